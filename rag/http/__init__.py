"""The HTTP edge (FastAPI): the app factory, the API and page routers, middleware and schemas.
The only package that imports fastapi."""
