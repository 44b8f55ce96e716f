"""The HTTP API: request and response models, and the OpenAPI document made from them."""
