"""Per-run quality control of preprocessed BOLD runs: metrics, the QC table, figures."""
