"""The landing sensor: a dispatcher over the folder listing (local) and the landing queue (AWS)."""
