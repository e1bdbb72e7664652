"""Seeded simulators of the default study and of meta-analysis coordinate sets."""
