"""How a service's settings read on a page: text as text (not one letter at a time), lists
joined with commas, numbers as numbers, an empty value as nothing (the template shows a dash)."""

from django import template

register = template.Library()


@register.filter
def setting_value(value) -> str:
    """One setting's value as plain text; autoescaping still applies where it is shown."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set):
        return ", ".join(setting_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {setting_value(item)}" for key, item in value.items())
    return str(value)
