"""The records, formats and constants Perdure's parts share: its bottom layer.

Nothing here imports anything of Perdure but ``perdure.errors``, so the store, the service, the
SDK, the runtime and the API can all depend on it without depending on each other.
"""
