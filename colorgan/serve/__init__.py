"""`colorgan serve`: try a model in the browser — one static page and a small JSON/PNG API.

Needs the `serve` extra (`pip install 'colorgan[serve]'`: Starlette, uvicorn, python-multipart);
nothing outside this package imports it, so training and sampling never need a web stack.
"""
