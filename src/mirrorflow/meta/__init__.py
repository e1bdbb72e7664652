"""Coordinate-based meta-analysis over NiMARE: ALE, conjunction, contrast and MACM."""
