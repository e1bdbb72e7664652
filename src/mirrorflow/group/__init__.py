"""Group maps, brain-behaviour regressions, their overlap and the behavioural correlation."""
