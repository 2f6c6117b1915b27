from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator

from .models import Role, Zone

User = get_user_model()


class GrantForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        to_field_name="username",
        help_text="A person…",
    )
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        to_field_name="name",
        help_text="…or a group (everyone in it).",
    )
    role = forms.ChoiceField(choices=Role.choices)
    zone = forms.ModelChoiceField(
        queryset=Zone.objects.all(),
        required=False,
        to_field_name="name",
        help_text="Empty for the global roles (auditor, superadmin).",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty for no expiry. Temporary delegation should expire.",
    )
    reason = forms.CharField(max_length=300, widget=forms.TextInput)

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("group")):
            raise forms.ValidationError("Choose exactly one person or one group.")
        return data


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=300)


class ExpiryForm(forms.Form):
    expires_at = forms.DateTimeField(
        required=True,
        label="New expiry (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class PersonForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[
            RegexValidator(
                r"^[a-z][a-z0-9._-]{1,149}$",
                "Lower-case letters, digits, dots, hyphens and underscores; start with a letter.",
            )
        ],
    )
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()


class DeactivateForm(forms.Form):
    reason = forms.CharField(max_length=300)


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TokenForm(forms.Form):
    token = forms.CharField(
        max_length=16,
        label="Code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code from your authenticator app, or a recovery code.",
    )
