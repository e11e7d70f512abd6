"""Prompt templates: how a question and an answer become the model's prompt and response text.

`PlainTemplate` leaves them as they are (base models, the toy task, SMDM on GSM8K-Aug).
`ChatTemplate` renders one user turn with the tokenizer's chat template and ends the response
with whatever the template puts after an assistant message (e.g. LLaDA's `<|eot_id|>`), found
by rendering the conversation with and without the answer, so no end-of-turn string is
hard-coded. Benchmarks that decode an SFT model must format prompts with the template its SFT
data used.
"""

from __future__ import annotations

from typing import Protocol

from transformers import PreTrainedTokenizerBase


class Template(Protocol):
    """Turns a question and an answer into prompt text and response text."""

    def prompt(self, tokenizer: PreTrainedTokenizerBase, question: str) -> str:
        """The prompt text for `question`."""
        ...

    def response(self, tokenizer: PreTrainedTokenizerBase, question: str, answer: str) -> str:
        """The response text (what follows the prompt) for `answer`."""
        ...


class PlainTemplate:
    """No template: the prompt is the question, the response is the answer."""

    def prompt(self, tokenizer: PreTrainedTokenizerBase, question: str) -> str:
        """`question` unchanged."""
        return question

    def response(self, tokenizer: PreTrainedTokenizerBase, question: str, answer: str) -> str:
        """`answer` unchanged."""
        return answer


class ChatTemplate:
    """One user turn through the tokenizer's chat template.

    Args:
        system: Optional system message.
    """

    def __init__(self, system: str | None = None) -> None:
        self.system = system

    def _messages(self, question: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": question}]

    def _render(
        self, tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], prompt: bool
    ) -> str:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"{type(tokenizer).__name__} has no chat template: use a plain template "
                "(data.template=null) or a tokenizer that has one "
                "(backbone.tokenizer_name_or_path, e.g. the instruct model's)"
            )
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)

    def prompt(self, tokenizer: PreTrainedTokenizerBase, question: str) -> str:
        """The rendered user turn followed by the assistant header."""
        return self._render(tokenizer, self._messages(question), prompt=True)

    def response(self, tokenizer: PreTrainedTokenizerBase, question: str, answer: str) -> str:
        """`answer` plus the end-of-turn text the template appends after it.

        Raises:
            ValueError: if the template does not render the prompt as a prefix of the
                conversation that includes the answer.
        """
        messages = self._messages(question)
        prompt = self._render(tokenizer, messages, prompt=True)
        full = self._render(
            tokenizer, [*messages, {"role": "assistant", "content": answer}], prompt=False
        )
        if not full.startswith(prompt):
            raise ValueError(
                "the chat template does not render the prompt as a prefix of the full "
                "conversation; it cannot be split into prompt and response"
            )
        return full[len(prompt) :]
