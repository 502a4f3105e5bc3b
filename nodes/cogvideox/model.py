"""The CogVideoX family (ConsisID, Ingredients, Concat-ID CogVideoX) as a native ComfyUI MODEL.

ComfyUI 0.3.75 has no CogVideoX, so the transformer is the pack's (`multiid_core/cogvideox/transformer.py`, the
released key names, built with ComfyUI's ops so partial loading and fp8 storage work), adopted as
`CogVideoXDiT`, which reads ComfyUI's calling convention. Around it, a `BaseModel` with the snapshot's own
schedule (`CogVideoXSampling`: v-prediction on the discrete table of `scheduler_config.json`, exact at the
zero-terminal-SNR end) and the VAE's latent scale. Identities, the first frame and Concat-ID's references
travel in the conditioning (`conditioning.py`), so ComfyUI's cond batching carries them; the type
names (`MultiIDCogVideoX`, `CogVideoXLatent`) do not collide with newer ComfyUI's native `CogVideoX`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import comfy.conds
import comfy.latent_formats
import comfy.ldm.modules.attention as comfy_attention_kernels
import comfy.model_base
import comfy.model_management as mm
import comfy.model_patcher
import comfy.model_sampling
import comfy.patcher_extension
import comfy.supported_models_base
import torch
from comfy.cli_args import args as comfy_args

from ...multiid_core.cogvideox.inputs import identity_tokens
from ...multiid_core.cogvideox.schedule import alphas_cumprod, final_alpha
from ...multiid_core.cogvideox.transformer import CogVideoXTransformer, cogvideox_rope
from ...multiid_core.errors import MultiIDError, non_finite_message
from ...multiid_core.families import Family, Loader
from ...multiid_core.parallel import SequenceShard
from ...multiid_core.routing import (
    IdentityInjection,
    IdentitySet,
    RoutingRecorder,
    TokenGrid,
    coverage_matrix,
    recording_steps,
)
from .. import family_tags
from ..options import PEER_RESIDUALS, SHARD, TEACACHE, step_of
from ..teacache import COGVIDEOX_5B

IDENTITY = "multiid_identity"  # conditioning key: an IdentityCondition
FIRST_FRAME = "multiid_first_frame"  # conditioning key: raw latents [1, C, F, h, w], the face frame then zeros
REFERENCES = "multiid_cogvideox_references"  # conditioning key: raw latents [1, C, N, h, w], one per person


@dataclass(eq=False)  # compared by identity: ComfyUI batches two conditionings only if they hold the same one
class IdentityCondition:
    """The people of one video and how their faces enter it; read by the model at every call."""

    people: IdentitySet
    style: str  # which EVA features the perceiver reads ("consisid", "ingredients")
    strength: float
    video_frames: int
    map_steps: str = "all steps"
    recorder: RoutingRecorder = field(default_factory=RoutingRecorder)
    _coverage: dict = field(default_factory=dict)
    _kept: dict = field(default_factory=dict)
    _kept_at: float | None = None

    @property
    def per_branch(self) -> bool:
        return self.people.per_branch

    def records(self, step: int, steps: int) -> bool:
        return step in recording_steps(self.map_steps, steps)

    def face_tokens(self, transformer, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return identity_tokens(transformer, self.style, self.people.identities, device, dtype)

    def coverage(self, grid: TokenGrid, device: torch.device) -> torch.Tensor | None:
        """[tokens, N] mask coverage of each video token (None without masks), made once per grid."""
        if grid not in self._coverage:
            self._coverage[grid] = coverage_matrix(self.people.masks, grid, self.video_frames, self.people.labels)
        coverage = self._coverage[grid]
        return None if coverage is None else coverage.to(device)

    def kept_for(self, sigma: torch.Tensor | None) -> dict:
        """Residuals the unconditional call of this step keeps for the conditional one (emptied at a new step)."""
        at = None if sigma is None else float(sigma.max())
        if at != self._kept_at:
            self._kept.clear()
            self._kept_at = at
        return self._kept


# Alpha standing in for 0 at the zero-terminal-SNR end, so the sigma table stays finite (ComfyUI's own value
# for zsnr models); the model treats that sigma as exactly alpha 0.
TERMINAL_ALPHA = 4.8973451890853435e-08


class CogVideoXSampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.V_PREDICTION):
    """V-prediction on a snapshot's discrete schedule (scaled-linear betas, snr shift, zero-terminal SNR).

    ComfyUI's sigma space (x = x0 + sigma * noise) cannot hold alpha 0; the last sigma is large but finite
    and `alpha()` maps it back to 0, so x0 = -v there exactly, as diffusers computes it.
    """

    def __init__(self, scheduler_config: Mapping[str, Any]):
        torch.nn.Module.__init__(self)
        self.sigma_data = 1.0
        # Plain attributes, not buffers: they stay on the CPU in diffusers' dtype (float64) and enter the
        # arithmetic as scalars, which every device accepts.
        self.alphas = alphas_cumprod(scheduler_config)
        self.final_alpha = final_alpha(scheduler_config, self.alphas)
        self.num_timesteps = len(self.alphas)
        self.set_sigmas(((1 - self.alphas) / self.alphas.clamp_min(TERMINAL_ALPHA)) ** 0.5)

    def alpha(self, sigma: torch.Tensor) -> torch.Tensor:
        """Cumulative alpha of each sigma (CPU): the table's own for table sigmas (0 at the end), else 1/(1+s^2)."""
        flat = sigma.detach().reshape(-1).float().cpu()
        table = self.sigmas.cpu()
        t = self.timestep(flat).long().cpu()
        exact = (flat - table[t]).abs() <= 1e-5 * table[t]
        alpha = torch.where(exact, self.alphas[t], 1 / (1 + flat.to(self.alphas.dtype) ** 2))
        return alpha.reshape(sigma.shape)

    def calculate_denoised(self, sigma, model_output, model_input):
        alpha = self.alpha(sigma)
        keep, away = (c.to(model_output) for c in (alpha**0.5, (1 - alpha) ** 0.5))
        keep, away = (comfy.model_sampling.reshape_sigma(c, model_output.ndim) for c in (keep, away))
        sigma = comfy.model_sampling.reshape_sigma(sigma, model_output.ndim)
        sample = model_input / (sigma**2 + 1) ** 0.5
        return keep * sample - away * model_output


class CogVideoXLatent(comfy.latent_formats.LatentFormat):
    """Raw CogVideoX VAE latents [B, 16, T, h, w] in LATENT; the model sees them times the VAE's scale."""

    latent_channels = 16
    latent_dimensions = 3
    spacial_downscale_ratio = 8  # read by newer ComfyUI (empty-latent sizing, previews)
    temporal_downscale_ratio = 4

    def __init__(self, scale_factor: float, rgb_factors: list[list[float]] | None, rgb_bias: list[float] | None):
        self.scale_factor = scale_factor
        self.latent_rgb_factors = rgb_factors
        self.latent_rgb_factors_bias = rgb_bias


class MultiIDCogVideoXConfig(comfy.supported_models_base.BASE):
    unet_config = {"disable_unet_model_creation": True}
    unet_extra_config = {}
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]


class MultiIDCogVideoX(comfy.model_base.BaseModel):
    """A CogVideoX-family model under ComfyUI: the schedule, latent scale and conditioning of one snapshot."""

    def __init__(
        self,
        transformer: CogVideoXTransformer,
        family: Family,
        scheduler_config: Mapping[str, Any],
        latent_format: CogVideoXLatent,
        compute_dtype: torch.dtype,
        trained_identities: int,
    ):
        config = MultiIDCogVideoXConfig(MultiIDCogVideoXConfig.unet_config)
        config.latent_format = latent_format
        weight_dtype = transformer.proj_out.weight.dtype  # a linear layer's: fp8 where weights are stored so
        config.manual_cast_dtype = compute_dtype if weight_dtype != compute_dtype else None
        super().__init__(config, comfy.model_base.ModelType.V_PREDICTION, device=mm.unet_offload_device())
        self.diffusion_model = CogVideoXDiT.adopt(transformer, weight_dtype)
        self.model_sampling = CogVideoXSampling(scheduler_config)
        self.family = family
        self.trained_identities = trained_identities
        self.compute_dtype = compute_dtype
        self.memory_usage_factor_conds = (REFERENCES,)

    def get_dtype(self) -> torch.dtype:
        return self.diffusion_model.dtype

    def extra_conds(self, **kwargs):
        dit = self.diffusion_model
        family_tags.refuse_other_family(kwargs, dit.family_tag, dit.loader.value)
        out = {}
        text = kwargs.get("cross_attn")
        if text is not None:
            out["c_crossattn"] = comfy.conds.CONDRegular(text)
        first_frame = kwargs.get(FIRST_FRAME)
        if first_frame is not None:
            out["c_concat"] = comfy.conds.CONDNoiseShape(self.process_latent_in(first_frame))
        references = kwargs.get(REFERENCES)
        if references is not None:
            out[REFERENCES] = comfy.conds.CONDRegular(self.process_latent_in(references))
        identity = kwargs.get(IDENTITY)
        if identity is not None:
            out[IDENTITY] = comfy.conds.CONDConstant(identity)
        return out

    def extra_conds_shapes(self, **kwargs):
        references = kwargs.get(REFERENCES)
        return {} if references is None else {REFERENCES: list(references.shape)}

    def memory_required(self, input_shape, cond_shapes=None):
        """Working memory of one call: the joint sequence's activations, generously (weights not counted)."""
        config = self.diffusion_model.config
        batch, _, frames, height, width = input_shape
        frames += sum(shape[2] for shape in (cond_shapes or {}).get(REFERENCES, [])[:1])
        tokens = frames * (height // config.patch_size) * (width // config.patch_size) + config.max_text_seq_length
        element = torch.finfo(self.compute_dtype).bits // 8
        return batch * tokens * config.inner_dim * element * 24


class CogVideoXDiT(CogVideoXTransformer):
    """The pack's CogVideoX transformer read through ComfyUI's call: [B, C, T, h, w] latents, conditioning
    in kwargs, guidance branches in `transformer_options`. Adds no state (`adopt` changes the class)."""

    family_tag = family_tags.COGVIDEOX
    loader = Loader.VIDEO_MODEL
    teacache = COGVIDEOX_5B
    multi_gpu = True
    rank_options = ()

    @property
    def attention_heads(self) -> int:
        return self.config.num_attention_heads

    def video_tokens(self, x: torch.Tensor) -> int:
        """Tokens of video latents [B, C, T, h, w]: frames x patch rows x patch columns."""
        p = self.config.patch_size
        return x.shape[2] * (x.shape[3] // p) * (x.shape[4] // p)

    def routing_condition(self, kwargs: dict) -> IdentityCondition | None:
        return kwargs.get(IDENTITY)

    def residual_buffer(self, x: torch.Tensor, rows: int, shard: SequenceShard) -> torch.Tensor:
        """Where a multi-GPU rank receives its guidance pair's identity residuals (its slice of video tokens)."""
        start, stop = shard.bounds(self.video_tokens(x))
        return torch.empty((rows, stop - start, self.config.inner_dim), dtype=x.dtype, device=x.device)

    @classmethod
    def adopt(cls, transformer: CogVideoXTransformer, weight_dtype: torch.dtype) -> CogVideoXDiT:
        transformer.__class__ = cls
        transformer.dtype = weight_dtype
        transformer.set_attention(comfy_attention)
        return transformer

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        transformer_options = transformer_options or {}
        return comfy.patcher_extension.WrapperExecutor.new_class_executor(
            self._forward,
            self,
            comfy.patcher_extension.get_all_wrappers(
                comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, transformer_options
            ),
        ).execute(x, timesteps, context, transformer_options, **kwargs)

    def _forward(self, x, timesteps, context, transformer_options, **kwargs) -> torch.Tensor:
        identity: IdentityCondition | None = kwargs.get(IDENTITY)
        references: torch.Tensor | None = kwargs.get(REFERENCES)
        self._check_call(x, context, identity, references)
        latents = x.movedim(1, 2)  # [B, T, C, h, w], the transformer's layout
        frames = latents.shape[1]
        if references is not None:  # Concat-ID: clean reference frames after the video, on the time axis
            latents = torch.cat([latents, references.movedim(1, 2).to(latents)], dim=1)
        _, total, _, height, width = latents.shape
        rope = None
        if self.config.use_rotary_positional_embeddings:
            rope = cogvideox_rope(self.config, total, height, width, latents.device)
        shard: SequenceShard | None = transformer_options.get(SHARD)
        injection = None
        if identity is not None and self.config.is_train_face:
            grid = TokenGrid(frames, height // self.config.patch_size, width // self.config.patch_size)
            tokens = None if shard is None else slice(*shard.bounds(total * grid.rows * grid.cols))
            injection = self.identity_injection(identity, grid, transformer_options, len(latents), latents, tokens)
        cache = transformer_options.get(TEACACHE)
        if cache is not None:
            cache.step = step_of(transformer_options)[0] - 1
        branches = transformer_options.get("uuids") or [0]
        out = CogVideoXTransformer.forward(self, latents, context, timesteps, rope, injection, cache, branches, shard)
        if not torch.isfinite(out).all():
            raise MultiIDError(non_finite_message(*step_of(transformer_options)))
        return out[:, :frames].movedim(2, 1)

    def _check_call(self, x, context, identity, references) -> None:
        channels = x.shape[1]
        if channels != self.config.in_channels:
            raise MultiIDError(
                f"This {self.config.in_channels}-channel model got {channels}-channel latents: send positive and "
                "negative through MultiID Identity Conditioning (it adds the face frame this model needs) and "
                "sample its latent."
            )
        if self.config.is_train_face and identity is None:
            raise MultiIDError(
                "This identity model got a conditioning without an identity: connect both positive and negative "
                "through MultiID Identity Conditioning."
            )
        if context is None or context.ndim != 3 or context.shape[-1] != self.config.text_embed_dim:
            shape = None if context is None else tuple(context.shape)
            raise MultiIDError(
                f"The prompt conditioning has shape {shape}, but this model reads T5 embeddings of width "
                f"{self.config.text_embed_dim}: encode prompts with MultiID Text Encode (T5), not CLIP Text Encode."
            )

    @torch.compiler.disable  # bookkeeping in Python (branches, steps, kept residuals): not for torch.compile
    def identity_injection(
        self,
        condition: IdentityCondition,
        grid: TokenGrid,
        options: dict,
        batch: int,
        latents: torch.Tensor,
        tokens: slice | None = None,
    ) -> IdentityInjection:
        """The identity residuals of this call, routed as released whatever ComfyUI batched into it; of the video
        tokens in `tokens` only on a multi-GPU rank, where the guidance pair's residuals cross ranks."""
        branches = options.get("cond_or_uncond") or [0]
        chunk = batch // len(branches)
        branch_of = [branches[i // chunk] for i in range(batch)]
        step, steps = step_of(options)
        condition.recorder.active = condition.records(step - 1, steps)
        sources, recorded, keep, reuse = None, None, False, False
        if not condition.per_branch:
            if 1 in branches:  # the unconditional rows route every branch of their video
                first_uncond = branches.index(1) * chunk
                sources = [first_uncond + i % chunk for i in range(batch)]
                keep = 0 not in branches  # guidance split in two calls: the conditional one comes next
            else:
                reuse = True  # a conditional call after its unconditional one (or guidance off)
        if sources is not None and not keep:
            recorded = sorted({sources[i] for i in range(batch) if branch_of[i] == 0})
        elif condition.per_branch:
            recorded = [i for i in range(batch) if branch_of[i] == 0]
        face_tokens = condition.face_tokens(self, latents.device, latents.dtype)
        coverage = condition.coverage(grid, latents.device)
        if coverage is not None and tokens is not None:
            coverage = coverage[tokens]
        kept = options.get(PEER_RESIDUALS)
        return IdentityInjection(
            face_tokens,
            scale=condition.strength * self.config.local_face_scale,
            mode=condition.people.mode,
            coverage=coverage,
            prior_strength=condition.people.prior_strength,
            sources=sources,
            recorded_rows=recorded,
            recorder=condition.recorder,
            kept=condition.kept_for(options.get("sigmas")) if kept is None else kept,
            keep=keep,
            reuse=reuse,
        )


def comfy_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[B, H, L, D] attention through ComfyUI's kernel choice (PyTorch, SageAttention, xformers: launch flags)."""
    kernel = attention_kernel(q.device)
    return kernel(q, k, v, heads=q.shape[1], skip_reshape=True, skip_output_reshape=True)


def attention_kernel(device: torch.device):
    """ComfyUI's attention, except where it falls back to its sub-quadratic kernel only because nothing faster is
    enabled, as on the CPU: there PyTorch's SDPA, whose CPU kernel is chunked (flash-style) since PyTorch 2, as
    diffusers attends. ComfyUI's fallback took twice diffusers' step time at CogVideoX widths for the same
    memory (benchmarks/consisid_speed.py). A kernel asked for at launch (--use-quad-cross-attention) is kept."""
    chosen = comfy_attention_kernels.optimized_attention
    if device.type == "cpu" and chosen is comfy_attention_kernels.attention_sub_quad:
        if not comfy_args.use_quad_cross_attention:
            return comfy_attention_kernels.attention_pytorch
    return chosen


def model_patcher(model: MultiIDCogVideoX) -> comfy.model_patcher.ModelPatcher:
    return comfy.model_patcher.ModelPatcher(
        model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
    )
