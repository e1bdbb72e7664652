"""First-level GLM of the imitation task with nilearn."""
