"""The web pages' Jinja2 environment is sandboxed (immutable) and autoescapes.

The page templates are ours, but they render values that come from models and from other
people's prompts; the sandbox makes sure no template, ours or a future one, reaches Python
internals through them.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptmill.web.common import ENV, make_env

PAYLOADS = {
    "cycler-globals-popen": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "lipsum-globals-os": "{{ lipsum.__globals__['os'].system('id') }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "str-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "int-class": "{{ (1).__class__.__base__.__subclasses__() }}",
    "attr-filter-dunder": "{{ ('x'|attr('__class__')).__mro__ }}",
    "format-string-dunder": "{{ '{0.__class__.__mro__}'.format(1) }}",
    "own-global-function-globals": "{{ with_query.__globals__ }}",
    "own-filter-globals": "{{ self.__init__.__globals__ }}",
    "template-reference-context": "{{ self._TemplateReference__context }}",
    "list-append": "{% set x = [] %}{{ x.append(1) }}",
    "dict-update": "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "dict-pop-of-a-value": "{{ form.errors.pop('x', 1) }}",
    "func-code": "{{ with_query.__code__.co_consts }}",
}


def test_the_page_environment_is_an_immutable_sandbox_with_autoescape():
    for env in (ENV, make_env()):
        assert isinstance(env, ImmutableSandboxedEnvironment)
        assert env.autoescape is True or env.autoescape("page.html")
        assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_template_injection_payload_is_refused(case):
    class Form:
        errors = {"x": "an error"}

    template = ENV.from_string(PAYLOADS[case])
    with pytest.raises(SecurityError, match="unsafe"):
        template.render(form=Form())
