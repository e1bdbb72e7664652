"""The study report: figures, methods, runtimes and the comparison with the model studies."""
