from django import forms

from .models import Credential, Host


class HostForm(forms.ModelForm):
    class Meta:
        model = Host
        fields = ["address", "ssh_port", "ssh_user", "credential", "description", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(zone=self.instance.zone)
        self.fields["credential"].help_text = "Only credentials of this host's zone."


class CredentialForm(forms.Form):
    name = forms.SlugField(max_length=63)
    zone = forms.ModelChoiceField(queryset=None, to_field_name="name")
    private_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Leave empty to generate a new Ed25519 key pair (recommended).",
    )

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].queryset = zones
