"""Training: the state, the pure steps, the one loop and the Callback protocol it is handed."""
