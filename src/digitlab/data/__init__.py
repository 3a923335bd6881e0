"""The data layer: named sources and downloads, the offline mirror, the formats, the cache, `Digits`."""
