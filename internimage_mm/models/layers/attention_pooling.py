"""Attention pooling: the CLIP-style projector of the InternImage-H classifier."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .norm import build_layout_norm


class CrossAttention(nn.Module):
    """Multi-head cross attention with separate q/k/v projections and optional qkv biases.

    The biases are stand-alone parameters (``q_bias``/``k_bias``/``v_bias``), as in the official
    H checkpoint; ``proj`` maps the ``dim`` attended channels to ``out_dim``.
    """

    def __init__(self, dim: int, num_heads: int = 16, qkv_bias: bool = True,
                 out_dim: int | None = None, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'dim ({dim}) must be divisible by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.k_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.proj = nn.Linear(dim, out_dim or dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: Tensor, layer: nn.Linear, bias: Tensor | None) -> Tensor:
        b, n, _ = x.shape
        return F.linear(x, layer.weight, bias).reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``q``: [B, Nq, dim], ``k``/``v``: [B, Nk, dim] -> [B, Nq, out_dim]."""
        b, nq, _ = q.shape
        out = F.scaled_dot_product_attention(  # softmax(q k^T / sqrt(head_dim)) v
            self._heads(q, self.q, self.q_bias), self._heads(k, self.k, self.k_bias),
            self._heads(v, self.v, self.v_bias),
            dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, nq, -1)))


class AttentionPoolingBlock(nn.Module):
    """Pools a token sequence to one vector: the query is the mean token.

    ``out = proj(attn(LN_q(mean(x)), LN_k(x), LN_v(x)))``; LayerNorms with eps 1e-6. Submodule
    names (``norm1_q``, ``norm1_k``, ``norm1_v``, ``cross_dcn``) are the official ones.
    """

    def __init__(self, dim: int = 1024, num_heads: int = 16, qkv_bias: bool = True,
                 out_dim: int | None = 768, norm_layer: str = 'LN', drop: float = 0.,
                 attn_drop: float = 0.):
        super().__init__()
        self.norm1_q = build_layout_norm(dim, norm_layer)
        self.norm1_k = build_layout_norm(dim, norm_layer)
        self.norm1_v = build_layout_norm(dim, norm_layer)
        self.cross_dcn = CrossAttention(dim, num_heads, qkv_bias, out_dim, attn_drop, drop)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: [B, N, dim] -> [B, out_dim]."""
        query = x.mean(dim=1, keepdim=True)
        out = self.cross_dcn(self.norm1_q(query), self.norm1_k(x), self.norm1_v(x))
        return out.squeeze(1)
