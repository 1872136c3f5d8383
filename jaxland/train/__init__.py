"""Training: the one state, the pure steps, and the one loop."""
