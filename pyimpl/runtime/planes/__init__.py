"""Request planes: how a request reaches an instance and its response stream comes back."""
