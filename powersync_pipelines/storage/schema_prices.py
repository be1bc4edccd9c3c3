"""Price provenance: which intervals were filled (not provider data) and where each price came from."""

MIGRATIONS = [
    (
        "prices_0001_filled_provenance",
        """
        ALTER TABLE prices ADD COLUMN IF NOT EXISTS filled BOOLEAN;
        ALTER TABLE prices ADD COLUMN IF NOT EXISTS provenance VARCHAR;
        """,
    ),
]
