"""Data for calibration, evaluation and benchmarking: sources, preprocessing, range calibrators.

Everything here runs on numpy + Pillow only, so that a Jetson without torch preprocesses exactly
as training did.
"""
