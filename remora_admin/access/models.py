from django.core.validators import RegexValidator
from django.db import models

slug_name = RegexValidator(
    r"^[a-z][a-z0-9-]{0,62}$",
    "Use lower-case letters, digits and hyphens, starting with a letter.",
)


class Zone(models.Model):
    """A named group of hosts with one sensitivity, the unit that access is granted on."""

    class Sensitivity(models.TextChoices):
        RESTRICTED = "restricted", "Restricted"
        STANDARD = "standard", "Standard"

    name = models.CharField(max_length=63, unique=True, validators=[slug_name])
    sensitivity = models.CharField(
        max_length=16, choices=Sensitivity.choices, default=Sensitivity.STANDARD
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_restricted(self) -> bool:
        return self.sensitivity == self.Sensitivity.RESTRICTED
