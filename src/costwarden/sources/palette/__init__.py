"""The Palette source: an API client and the ingestion of cost data and fleet metadata."""

from costwarden.sources.palette.client import AsyncPaletteClient, PaletteClient
from costwarden.sources.palette.ingest import ingest_palette

__all__ = ["AsyncPaletteClient", "PaletteClient", "ingest_palette"]
