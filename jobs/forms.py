from django import forms

from .models import RunState


class RunFilterForm(forms.Form):
    host = forms.CharField(required=False)
    recipe = forms.CharField(required=False)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *RunState.choices])
    person = forms.CharField(required=False)
    batch = forms.UUIDField(required=False)


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=300)
