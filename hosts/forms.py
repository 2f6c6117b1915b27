from django import forms

from .models import Credential, Host


class HostForm(forms.ModelForm):
    class Meta:
        model = Host
        fields = [
            "address",
            "service_address",
            "ssh_port",
            "ssh_user",
            "credential",
            "description",
            "active",
        ]
        labels = {"address": "SSH address", "service_address": "Service address"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(zone=self.instance.zone)
        self.fields["credential"].help_text = "Only credentials of this host's zone."


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value back: a refused private key is not sent back to
    the browser (nor into its cache, history or a screenshot); it has to be pasted again."""

    def format_value(self, value):
        return None


class CredentialForm(forms.Form):
    name = forms.SlugField(max_length=63)
    zone = forms.ModelChoiceField(queryset=None, to_field_name="name")
    private_key = forms.CharField(
        required=False,
        widget=SecretTextarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Leave empty to generate a new Ed25519 key pair (recommended).",
    )

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].queryset = zones
