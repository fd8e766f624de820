"""The hub's event stream (its built-in Event Hub-compatible endpoint) without Qt: each
event decoded, a bounded filtered log of them, a consumer over ``azure.eventhub.aio`` and
a recorder to JSON Lines."""
