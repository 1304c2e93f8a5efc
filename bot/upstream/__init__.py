"""What package indexes say about releases: upload times, yanks, the release-age quarantine."""
