"""Sensors, schedules and automation policy."""
