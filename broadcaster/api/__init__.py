"""The HTTP faces of loa: the JSON API (v1, docs/api.md) and the audio files devices download."""

API_VERSION = "v1"  # in every path (/api/v1/...): a breaking change gets /api/v2 beside it
