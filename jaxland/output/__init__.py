"""What runs write for people: metrics (TensorBoard + JSONL), figures, tables and JSON files."""
