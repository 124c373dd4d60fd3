"""The oracle: targets (what is judged), the engine (how), and its products (check, conform)."""
