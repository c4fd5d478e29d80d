"""The custom op traces through torch.compile and torch.export as a single node."""
import torch

from ops_dcnv3 import dcnv3

from ._cases import Args, make_inputs


def _fn(args):
    def f(x, off, mask):
        return dcnv3(x, off, mask, *args.tuple()) * 2.0
    return f


def test_torch_compile_no_graph_break():
    args = Args(group=2, group_channels=4)
    x, off, mask = make_inputs(args, batch=2, dtype=torch.float32)
    f = _fn(args)
    explanation = torch._dynamo.explain(f)(x, off, mask)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(f, backend='aot_eager', fullgraph=True)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    out = compiled(*leaves)
    torch.testing.assert_close(out, f(x, off, mask))
    out.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in leaves)


def test_torch_export_contains_the_custom_op():
    args = Args(group=2, group_channels=4)
    x, off, mask = make_inputs(args, batch=2, dtype=torch.float32)

    class M(torch.nn.Module):
        def forward(self, x, off, mask):
            return _fn(args)(x, off, mask)

    ep = torch.export.export(M(), (x, off, mask))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == 'call_function'}
    assert 'ops_dcnv3.dcnv3_forward.default' in targets
    torch.testing.assert_close(ep.module()(x, off, mask), M()(x, off, mask))
