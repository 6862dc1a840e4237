"""Dev-only tooling: the `make up` runner (`shop-dev`) and the dev token command (`shop-token`).

This is the dev composition root: it reads both services' settings classes, so it imports
the services; nothing imports it, and no image installs it.
"""
