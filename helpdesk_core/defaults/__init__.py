"""The core's own default behaviours, written as plugins (``trylast``) so any plugin overrides them."""
