"""Causal language models behind one interface: a GPT-2 built from its config, the Secret
Sharer's character-level LSTM (Carlini et al. 2019), or a Hugging Face checkpoint on disk.

Every model reads ``[BOS] + tokens[:-1]`` and gives logits of shape (B, T, V): position t
predicts token t. Its top-level children that hold parameters are its *layers* (the run
store's ``layers``): ``embed``, ``block1`` .. ``blockK``, ``out`` for a GPT (and for a
checkpoint whose architecture has that shape), ``embed``, ``lstm1`` .. ``lstmK``, ``out`` for
the LSTM. `CausalLM.prefix_state` and `CausalLM.continue_from` let a shared prefix be run
once and continued by many rows (the digit tree of `scoring.tree_logperplexity`).

transformers is imported only when a GPT or a checkpoint is built; the LSTM needs torch alone.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

LM_MODELS = ("gpt", "lstm", "hf")
_INSTALL = "language models need transformers: pip install 'memdash[text]'"


def _transformers() -> Any:
    """The transformers module, or an ImportError that says how to install it."""
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - the test environment has it
        raise ImportError(_INSTALL) from err
    transformers.utils.logging.disable_progress_bar()  # no bars of its own in memdash's output
    return transformers


def _first_line(err: Exception) -> str:
    return (str(err).strip() or type(err).__name__).splitlines()[0]


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _first_tensor(output: Any) -> torch.Tensor:
    """A module's main output: the tensor itself, or the first item of a tuple/ModelOutput."""
    return output if isinstance(output, torch.Tensor) else output[0]


class _Group(nn.Module):
    """Modules that a wrapped model calls itself, registered together under one layer name."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)


class CausalLM(nn.Module):
    """A causal language model behind one interface (GPT-2 from a config, a char LSTM, or a
    checkpoint on disk). Top-level children with parameters are its layers (the store's
    ``layers``); hf: the same shape as gpt where the architecture allows, else its own.

    Attributes
    ----------
    kind : "gpt", "lstm" or "hf"
    context : the most positions one row may hold (prefix state included), None if unbounded
    """

    kind: str = ""
    context: int | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B, T, V) of int64 `ids` (B, T); position t predicts token t."""
        raise NotImplementedError

    def prefix_state(self, prefix: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Run int64 `prefix` (T0,) (BOS included by the caller) once.

        Returns
        -------
        (state, logits): the state after the prefix (GPT/HF: the key/value cache; LSTM: the
        (h, c) of each layer), batch 1, and the logits (V,) of the token after it, both
        computed without gradients (a state to score continuations from, not to train).
        """
        raise NotImplementedError

    def continue_from(self, state: Any, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, t, V) of `ids` (B, t) fed after the batch-1 `state` of `prefix_state`,
        broadcast to B rows. `state` is not modified: it is reused for every batch."""
        raise NotImplementedError

    def _taps(self) -> dict[str, tuple[nn.Module, bool]]:
        """Per layer the module whose output (False) or first input (True) is its hidden
        state."""
        return {name: (child, False) for name, child in self.named_children() if _has_params(child)}

    def hidden(self, ids: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Per layer in `layers` its hidden states (B, T, D) from one forward pass of `ids`
        (B, T) (for embeddings; ``out`` gives the logits, D = V)."""
        taps = self._taps()
        unknown = [name for name in layers if name not in taps]
        if unknown:
            raise ValueError(
                f"embedding layers {unknown} are not layers of the {self.kind} model; "
                f"valid: {', '.join(taps)}"
            )
        found: dict[str, torch.Tensor] = {}
        handles = []
        for name in layers:
            module, on_input = taps[name]

            def keep_output(_m, _args, output, name=name):
                found[name] = _first_tensor(output)

            def keep_input(_m, args, kwargs, name=name):
                found[name] = args[0] if args else kwargs["hidden_states"]

            handles.append(
                module.register_forward_pre_hook(keep_input, with_kwargs=True)
                if on_input
                else module.register_forward_hook(keep_output)
            )
        try:
            self(ids)
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name in layers if name not in found]
        if missing:  # a checkpoint whose forward calls the parts inside these layers directly
            raise ValueError(f"the {self.kind} model's layers {missing} give no hidden states")
        return {name: found[name] for name in layers}

    def _check(self, ids: torch.Tensor, dims: int, past: int = 0) -> None:
        if ids.dim() != dims or ids.shape[-1] < 1:
            shape = "(B, T)" if dims == 2 else "(T,)"
            raise ValueError(f"{self.kind} model: ids of shape {shape}, T >= 1, not {ids.shape}")
        if self.context is not None and past + ids.shape[-1] > self.context:
            raise ValueError(
                f"{self.kind} model: {past + ids.shape[-1]} positions exceed its context of "
                f"{self.context} tokens (raise the model's context / --seq-len)"
            )


class _LSTMLayer(nn.Module):
    """One LSTM layer (width -> width) followed by dropout."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, state = self.lstm(x, state)
        return self.drop(y), state


class LSTMLM(CausalLM):
    """The Secret Sharer's character-level model: ``embed`` (Embedding, width) ->
    ``lstm1`` .. ``lstmK`` (LSTM layers of the same width, each followed by dropout) ->
    ``out`` (Linear to the vocabulary)."""

    kind = "lstm"

    def __init__(self, vocab_size: int, *, layers: int, width: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        for i in range(layers):
            self.add_module(f"lstm{i + 1}", _LSTMLayer(width, dropout))
        self.out = nn.Linear(width, vocab_size)
        self.n_layers = layers

    def _run(self, ids: torch.Tensor, states: Sequence[Any]) -> tuple[torch.Tensor, tuple]:
        x = self.embed(ids)
        after = []
        for i, state in enumerate(states):
            x, state = getattr(self, f"lstm{i + 1}")(x, state)
            after.append(state)
        return self.out(x), tuple(after)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self._check(ids, 2)
        return self._run(ids, [None] * self.n_layers)[0]

    @torch.inference_mode()
    def prefix_state(self, prefix: torch.Tensor) -> tuple[Any, torch.Tensor]:
        self._check(prefix, 1)
        logits, states = self._run(prefix[None], [None] * self.n_layers)
        return states, logits[0, -1]

    def continue_from(self, state: Any, ids: torch.Tensor) -> torch.Tensor:
        self._check(ids, 2)
        rows = ids.shape[0]
        # expanded copies: nn.LSTM reads h0/c0 and never writes them, so `state` stays intact
        states = [
            (h.expand(-1, rows, -1).contiguous(), c.expand(-1, rows, -1).contiguous())
            for h, c in state
        ]
        return self._run(ids, states)[0]


def _block_layout(model: nn.Module) -> tuple[dict[str, nn.Module], dict] | None:
    """``embed``, ``block1`` .. ``blockK``, ``out`` of a transformers causal LM whose base
    model is (embeddings..., a ModuleList of K decoder blocks, final modules...) and whose
    head is the output embeddings; None for any other architecture."""
    base = getattr(model, "base_model", model)
    head = model.get_output_embeddings()
    if base is model or head is None:
        return None
    if {id(m) for m in model.children()} != {id(base), id(head)}:
        return None
    n_blocks = getattr(model.config.get_text_config(), "num_hidden_layers", None)
    children = list(base.named_children())
    at = [
        i
        for i, (_, child) in enumerate(children)
        if isinstance(child, nn.ModuleList) and len(child) == n_blocks
    ]
    if len(at) != 1 or at[0] == 0:
        return None
    blocks = children[at[0]][1]
    layers: dict[str, nn.Module] = {"embed": _Group(dict(children[: at[0]]))}
    layers.update({f"block{i + 1}": block for i, block in enumerate(blocks)})
    layers["out"] = _Group({**dict(children[at[0] + 1 :]), "head": head})
    # the embeddings are what the first block reads; the logits are the head's output
    taps = {"embed": (blocks[0], True), "out": (head, False)}
    taps.update({f"block{i + 1}": (block, False) for i, block in enumerate(blocks)})
    return layers, taps


def _tensor_ids(module: nn.Module) -> set[int]:
    return {id(t) for t in (*module.parameters(), *module.buffers())}


class HFCausalLM(CausalLM):
    """A transformers causal LM (``GPT2LMHeadModel`` built from a config, or any checkpoint)
    whose modules are registered under memdash's layer names.

    The wrapped model is kept outside the module tree (its modules are the layers'), so the
    state dict's keys start with the layer names; GPT-2's tied input and output embeddings
    appear under both ``embed`` and ``out`` (clone the tensors before saving with
    safetensors). Its forward runs the wrapped model's own, masks and positions included.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.__dict__["wrapped"] = model  # not a child: its modules are registered below
        layout = _block_layout(model)
        if layout is not None:
            layers, taps = layout
            registered = set().union(*(_tensor_ids(m) for m in layers.values()))
            if registered != _tensor_ids(model):
                layout = None  # some weights live outside the blocks: keep the model's own
        if layout is None:
            layers = dict(model.named_children())
            taps = {name: (child, False) for name, child in layers.items()}
        for name, module in layers.items():
            self.add_module(name, module)
        self._tap_modules = {n: tap for n, tap in taps.items() if _has_params(layers[n])}
        config = model.config.get_text_config()
        positions = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        self.context = int(positions) if positions else None
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self.train(model.training)

    def train(self, mode: bool = True) -> HFCausalLM:
        super().train(mode)
        self.wrapped.train(mode)  # the wrapper roots' own flags too
        return self

    def _taps(self) -> dict[str, tuple[nn.Module, bool]]:
        return self._tap_modules

    def _call(self, ids: torch.Tensor, cache: Any) -> Any:
        return self.wrapped(input_ids=ids, use_cache=True, **{self._cache_arg: cache})

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self._check(ids, 2)
        return self.wrapped(input_ids=ids, use_cache=False).logits

    @torch.inference_mode()
    def prefix_state(self, prefix: torch.Tensor) -> tuple[Any, torch.Tensor]:
        self._check(prefix, 1)
        cache = _transformers().DynamicCache(config=self.wrapped.config)
        out = self._call(prefix[None], cache)
        return getattr(out, self._cache_arg), out.logits[0, -1]

    def continue_from(self, state: Any, ids: torch.Tensor) -> torch.Tensor:
        self._check(ids, 2, past=state.get_seq_length())
        cache = copy.deepcopy(state)  # the model appends to the cache it is given
        cache.batch_repeat_interleave(ids.shape[0])
        return self._call(ids, cache).logits


def load_hf(model_path: str | None, *, vocab_size: int) -> HFCausalLM:
    """A causal LM checkpoint saved with ``save_pretrained`` (``AutoModelForCausalLM.
    from_pretrained(model_path, local_files_only=True)``).

    Raises
    ------
    ValueError
        naming --model-path: no path, no folder, no config.json, a config transformers cannot
        read, an architecture that is not a causal LM, weights that do not load, or an output
        vocabulary smaller than the tokenizer's `vocab_size`.
    """
    if not model_path:
        raise ValueError("--model hf needs --model-path, a folder saved with save_pretrained")
    path = Path(model_path)
    where = f"--model-path {model_path}"
    if not path.is_dir():
        raise ValueError(f"{where}: no such folder")
    if not (path / "config.json").is_file():
        raise ValueError(f"{where}: no config.json, so not a Hugging Face model checkpoint")
    tf = _transformers()
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{where}: config.json cannot be read: {_first_line(err)}") from err
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ValueError(
            f"{where}: a {config.model_type!r} model is not a causal language model "
            "(AutoModelForCausalLM has no class for it)"
        )
    try:
        model = tf.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: the weights do not load: {_first_line(err)}") from err
    n_out = model.get_output_embeddings()
    n_out = getattr(n_out, "out_features", None) or model.config.get_text_config().vocab_size
    if n_out < vocab_size:
        raise ValueError(
            f"{where}: the model predicts {n_out} tokens, fewer than the tokenizer's {vocab_size}"
        )
    return HFCausalLM(model, "hf")


def build_lm(
    name: str,
    *,
    vocab_size: int,
    context: int,
    layers: int,
    width: int,
    heads: int,
    dropout: float,
    model_path: str | None,
    bos: int | None = None,
) -> CausalLM:
    """Build a causal language model by name (`LM_MODELS`).

    Parameters
    ----------
    name : "gpt" (``GPT2LMHeadModel`` from a ``GPT2Config``), "lstm" (the Secret Sharer's
        character-level model) or "hf" (a checkpoint at `model_path`, whose own sizes and
        dropout replace `layers`, `width`, `heads` and `dropout`)
    vocab_size : tokens the model predicts, BOS included
    context : positions a GPT holds (its ``n_positions``), at least the sequence length
    layers, width, heads : blocks (or LSTM layers), hidden size, attention heads (GPT)
    dropout : dropout rate of every dropout layer, in [0, 1)
    model_path : the checkpoint folder for "hf" (ignored otherwise)
    bos : the BOS id a GPT's config names as bos/eos (default ``vocab_size - 1``)

    Raises
    ------
    ValueError
        an unknown name (listing the valid ones), sizes out of range, or a `model_path` that
        is not a causal LM checkpoint (see `load_hf`).
    """
    if name not in LM_MODELS:
        raise ValueError(f"unknown --model {name!r} for text; valid: {', '.join(LM_MODELS)}")
    if name == "hf":
        return load_hf(model_path, vocab_size=vocab_size)
    checks = {"vocab_size": vocab_size, "--layers": layers, "--width": width, "context": context}
    for option, value in checks.items():
        if value < 1:
            raise ValueError(f"{name} model: {option} must be >= 1, got {value}")
    if not 0.0 <= dropout < 1.0:  # NaN fails too
        raise ValueError(f"{name} model: --dropout must lie in [0, 1), got {dropout}")
    if name == "lstm":
        return LSTMLM(vocab_size, layers=layers, width=width, dropout=dropout)
    if heads < 1 or width % heads:
        raise ValueError(f"gpt model: --width {width} is not a multiple of --heads {heads}")
    bos = vocab_size - 1 if bos is None else bos
    if not 0 <= bos < vocab_size:
        raise ValueError(f"gpt model: BOS id {bos} lies outside the vocabulary of {vocab_size}")
    tf = _transformers()  # GPT-2 from its config, no weights fetched; torch's seed inits it
    rates = {"resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout}
    config = tf.GPT2Config(
        vocab_size=vocab_size, n_positions=context, n_embd=width, n_layer=layers, n_head=heads,
        bos_token_id=bos, eos_token_id=bos, **rates,
    )  # fmt: skip
    return HFCausalLM(tf.GPT2LMHeadModel(config), "gpt")
