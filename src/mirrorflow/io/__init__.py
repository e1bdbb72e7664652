"""Ground floor shared by every stage: BIDS names, sidecars, readers and checks."""
