"""Price providers, all normalised into the one price frame (``schemas.PriceFrame``)."""
