"""The pure model of the session contract (filled by issue 3)."""
