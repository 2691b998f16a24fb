"""The HTTP faces of loa: the JSON API (v1, docs/api.md) and the audio files devices download."""
