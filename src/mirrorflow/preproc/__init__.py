"""Preprocessing of BOLD runs: nipype interfaces, the workflow factory and its runner."""
