"""One APIRouter per resource; `broadcaster.api.app.create_app` mounts them under /api/v1."""
