"""Surprise game days: a sealed random plan, notifications, acknowledgement, blast radius."""
