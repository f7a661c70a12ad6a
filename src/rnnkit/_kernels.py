"""The numba kernels behind :mod:`rnnkit.compiled` (imported only when numba is installed).

One kernel per time step and direction, each doing exactly the element-wise operations of
the numpy code in :mod:`rnnkit.cells` for that step, fused into one pass over the step's
``(H, B)`` blocks (feature-major, gates in the inside order o, i, f, g for the LSTM; see
:mod:`rnnkit.cells`). Each kernel's docstring lists the numpy operations it reproduces;
the values are combined in the same order and precision (``x.dtype.type`` constants keep
float32 in float32; numba does not contract ``a * b + c`` into a fused multiply-add
without ``fastmath``, which is not used). ``tanh`` is numpy's own loop, called through its
address (``loop = (fn, data)`` from :func:`rnnkit.compiled._ufunc_loop`). Loops run over
flat views of the contiguous blocks, a few arrays per loop, so that they vectorise.

The exceptions, used only by the LSTM split across threads (``rnnkit.compiled.set_threads``)
and documented there: :func:`product`, rnnkit's own matrix product for a shard's per-step
products (explicit fused multiply-adds, no numpy counterpart), and
:func:`one_hot_grad_rows`, the one-hot input-weight gradient as sums by id.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# error_model="numpy": division by zero gives inf/nan as in numpy (and lets loops vectorise)
jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_L1_BYTES = 32768  # a (H, B) block up to this size is transposed in one sweep


@intrinsic
def _call_loop(typingctx, fn, args, dims, steps, data):
    """Call the numpy inner loop ``void f(char **args, intp *dims, intp *steps, void *)`` at
    address fn; the other arguments are addresses too."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, llargs):
        i8p = ir.IntType(8).as_pointer()
        ip = context.get_value_type(types.intp).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p.as_pointer(), ip, ip, i8p])
        f = builder.inttoptr(llargs[0], fnty.as_pointer())
        builder.call(f, [builder.inttoptr(llargs[1], i8p.as_pointer()),
                         builder.inttoptr(llargs[2], ip), builder.inttoptr(llargs[3], ip),
                         builder.inttoptr(llargs[4], i8p)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _apply(loop, src, dst, n):
    """dst[:n] = f(src[:n]) with the numpy loop ``loop = (fn, data)``; src and dst
    C-contiguous, of one dtype."""
    fn, data = loop
    args = np.empty(5, dtype=np.intp)  # char *args[2], intp dims[1], intp steps[2]
    args[0] = src.ctypes.data
    args[1] = dst.ctypes.data
    args[2] = n
    args[3] = src.itemsize
    args[4] = src.itemsize
    base = args.ctypes.data
    w = args.itemsize
    _call_loop(fn, base, base + 2 * w, base + 3 * w, data)


@jit
def apply_loop(loop, x, out):
    """out = f(x) through the numpy loop (x, out C-contiguous, the same size)."""
    _apply(loop, x, out, x.size)


@intrinsic
def _call_gemm(typingctx, fn, m, n, k, alpha, a, b, c):
    """``cblas_?gemm(RowMajor, NoTrans, NoTrans, m, n, k, alpha, a, k, b, n, 0, c, n)`` at
    address fn (64-bit integers, the ILP64 interface numpy's OpenBLAS has); a, b, c are
    addresses, alpha (and beta = 0) of the matrices' float type."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, alpha, types.intp,
                     types.intp, types.intp)

    def codegen(context, builder, signature, llargs):
        i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
        fl = context.get_value_type(signature.args[4])
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, i8p, i64,
                                               i8p, i64, fl, i8p, i64])
        f = builder.inttoptr(llargs[0], fnty.as_pointer())
        m_, n_, k_ = (builder.sext(v, i64) if v.type.width < 64 else v for v in llargs[1:4])
        ptrs = [builder.inttoptr(v, i8p) for v in llargs[5:8]]
        builder.call(f, [i32(101), i32(111), i32(111), m_, n_, k_, llargs[4], ptrs[0], k_,
                         ptrs[1], n_, fl(0.0), ptrs[2], n_])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call_gemv(typingctx, fn, m, n, alpha, a, x, y):
    """``cblas_?gemv(RowMajor, NoTrans, m, n, alpha, a, n, x, 1, 0, y, 1)`` at address fn
    (ILP64, as :func:`_call_gemm`)."""
    sig = types.void(types.intp, types.intp, types.intp, alpha, types.intp, types.intp,
                     types.intp)

    def codegen(context, builder, signature, llargs):
        i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
        fl = context.get_value_type(signature.args[3])
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i64, i64, fl, i8p, i64, i8p, i64,
                                               fl, i8p, i64])
        f = builder.inttoptr(llargs[0], fnty.as_pointer())
        m_, n_ = llargs[1], llargs[2]
        ptrs = [builder.inttoptr(v, i8p) for v in llargs[4:7]]
        builder.call(f, [i32(101), i32(111), m_, n_, llargs[3], ptrs[0], n_, ptrs[1], i64(1),
                         fl(0.0), ptrs[2], i64(1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _gemm(blas, a, b, c):
    """``np.matmul(a, b, out=c)`` as numpy calls the BLAS for C-contiguous a (M, K),
    b (K, N), c (M, N): the same function with the same arguments (``gemv`` when N = 1).
    blas = (address of ?gemm, address of ?gemv)."""
    M, K = a.shape
    N = b.shape[1]
    one = a.dtype.type(1)
    if N == 1:
        _call_gemv(blas[1], M, K, one, a.ctypes.data, b.ctypes.data, c.ctypes.data)
    else:
        _call_gemm(blas[0], M, N, K, one, a.ctypes.data, b.ctypes.data, c.ctypes.data)


@jit
def gemm(blas, a, b, c):
    """``c[...] = a @ b`` through numpy's BLAS at the addresses blas (see :func:`_gemm`)."""
    _gemm(blas, a, b, c)


_VECTOR_BYTES = 64  # one panel column block: 16 float32 or 8 float64 (a 512-bit register)


def _panel_intrinsic(R: int):
    """An intrinsic ``panel(a, lda, b, ldb, c, ldc, K, zero)``: for the R rows r of a at
    address a (row stride lda elements) and the W = 64 bytes of columns of b at address b
    (row stride ldb), ``c[r, 0:W] = sum over k in 0..K-1, in that order, of
    a[r, k] * b[k, 0:W]`` (row stride ldc), each term added with one ``llvm.fmuladd`` (a
    fused multiply-add where the CPU has one). zero (0 of the float type) gives the type.
    The R x W sums stay in registers for the whole of k: one load of b's row and R
    broadcasts of a per k."""

    @intrinsic
    def panel(typingctx, a, lda, b, ldb, c, ldc, K, zero):
        sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp,
                         types.intp, types.intp, zero)

        def codegen(context, builder, signature, llargs):
            fl = context.get_value_type(signature.args[7])
            W = _VECTOR_BYTES // (4 if fl == ir.FloatType() else 8)
            vt, i64, fp = ir.VectorType(fl, W), ir.IntType(64), fl.as_pointer()
            a_, lda_, b_, ldb_, c_, ldc_, K_ = llargs[:7]
            A, B, C = (builder.inttoptr(v, fp) for v in (a_, b_, c_))
            name = f"llvm.fmuladd.v{W}{'f32' if fl == ir.FloatType() else 'f64'}"
            fma = builder.module.globals.get(name) or ir.Function(
                builder.module, ir.FunctionType(vt, [vt, vt, vt]), name)
            splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), W), [0] * W)
            undef, zeros = ir.Constant(vt, ir.Undefined), ir.Constant(vt, None)
            entry = builder.block
            loop = builder.append_basic_block("panel.loop")
            done = builder.append_basic_block("panel.done")
            builder.cbranch(builder.icmp_signed(">", K_, i64(0)), loop, done)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            acc = [builder.phi(vt) for _ in range(R)]
            row = builder.load(builder.bitcast(builder.gep(B, [builder.mul(k, ldb_)]),
                                               vt.as_pointer()), align=4)
            new = []
            for r in range(R):
                ar = builder.load(builder.gep(A, [builder.add(builder.mul(i64(r), lda_), k)]))
                ar = builder.shuffle_vector(builder.insert_element(undef, ar, i64(0)), undef,
                                            splat_mask)
                new.append(builder.call(fma, [ar, row, acc[r]]))
            k1 = builder.add(k, i64(1))
            body_end = builder.block
            k.add_incoming(i64(0), entry)
            k.add_incoming(k1, body_end)
            for r in range(R):
                acc[r].add_incoming(zeros, entry)
                acc[r].add_incoming(new[r], body_end)
            builder.cbranch(builder.icmp_signed("<", k1, K_), loop, done)
            builder.position_at_end(done)
            out = []
            for r in range(R):
                v = builder.phi(vt)
                v.add_incoming(zeros, entry)
                v.add_incoming(new[r], body_end)
                out.append(v)
            for r in range(R):
                dst = builder.gep(C, [builder.mul(i64(r), ldc_)])
                builder.store(out[r], builder.bitcast(dst, vt.as_pointer()), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return panel


_panel8 = _panel_intrinsic(8)
_panel1 = _panel_intrinsic(1)


@numba.njit(cache=True, nogil=True, inline="always")
def _panels(a, K, b, ldb, c, ldc, M, z, isz):
    """c = a @ b for one block of W columns (addresses; a (M, K) C-contiguous): panels of
    8 rows, then one row at a time."""
    M8 = M - M % 8
    for i in range(0, M8, 8):
        _panel8(a + i * K * isz, K, b, ldb, c + i * ldc * isz, ldc, K, z)
    for i in range(M8, M):
        _panel1(a + i * K * isz, K, b, ldb, c + i * ldc * isz, ldc, K, z)


@numba.njit(cache=True, nogil=True, inline="always")
def _product(a, b, c):
    """``c[...] = a @ b`` for C-contiguous a (M, K), b (K, N), c (M, N) of one float type,
    with rnnkit's own kernel (:func:`_panel_intrinsic`): every element the sum over k in
    order, one fused multiply-add per term. Columns in blocks of W = 64 bytes; the last
    N % W columns through zero-padded copies, so that every column gets the same
    operations, whatever N and wherever the column is: the bits of a column of c depend
    on that column of b and on a only."""
    M, K = a.shape
    N = b.shape[1]
    z = a.dtype.type(0)
    isz = a.itemsize
    W = _VECTOR_BYTES // isz
    N0 = N - N % W
    pa, pb, pc = a.ctypes.data, b.ctypes.data, c.ctypes.data
    for j in range(0, N0, W):
        _panels(pa, K, pb + j * isz, N, pc + j * isz, N, M, z, isz)
    if N0 < N:
        bt = np.zeros((K, W), dtype=a.dtype)
        ct = np.empty((M, W), dtype=a.dtype)
        for k in range(K):
            for j in range(N0, N):
                bt[k, j - N0] = b[k, j]
        _panels(pa, K, bt.ctypes.data, W, ct.ctypes.data, W, M, z, isz)
        for i in range(M):
            for j in range(N0, N):
                c[i, j] = ct[i, j - N0]


@jit
def product(a, b, c):
    """``c[...] = a @ b`` with rnnkit's own kernel (see :func:`_product`): a (M, K),
    b (K, N), c (M, N), C-contiguous, one float type."""
    _product(a, b, c)


# --------------------------------------------------------------------------- rnn
@jit
def rnn_forward_step(loop, gT, rec, Wb, ids, hp, h, hs, t, relu, m, rmT, hm):
    """Step t: ``g += rec`` (one-hot inputs: ``g = Wb[:, ids[t]] + rec``); ``tanh(g)`` (or
    ``maximum(g, 0)``); ``h = g``; where the mask m (T, B) is False ``h = h_prev`` (hp);
    the state also to ``hs[t+1]`` (B, H); with recurrent dropout ``hm = h * rmT`` (what
    the next recurrent product reads). h, hp (H, B)."""
    H, B = rec.shape
    n = H * B
    g, h1 = gT[t].reshape(n), h.reshape(n)
    _input_plus(gT[t], rec, Wb, ids, t)
    if relu:
        zero = g.dtype.type(0)
        for k in range(n):
            v = g[k]
            g[k] = v if v > zero or v != v else zero  # np.maximum(v, 0): NaN stays, -0 -> 0
    else:
        _apply(loop, g, g, n)
    for k in range(n):
        h1[k] = g[k]
    _state_out(h, hp, hs, t, m, rmT, hm)


@jit
def rnn_backward_step(t, gT, dhs, relu, m, rmT, dh, keep, d, dG, small, pending):
    """Step t backward. If pending, first the end of step t+1 after its product:
    ``dh *= rmT``, ``dh += keep``. Then ``keep = where(m, 0, dh)``, ``dh += dhs[t]`` (dhs
    (T, B, H) time-major), ``dh *= m``, ``d = K * dh`` with ``K = 1 - h*h`` (relu:
    ``h > 0``), written to d (H, B) and to the step's slot of dG ((T, GH, B) if small,
    else (GH, T, B))."""
    H, B = dh.shape
    n = H * B
    if pending:
        _finish(dh, None, rmT, m, keep, None)
    _incoming(t, dh, dhs, m, keep)
    g, x, d1 = gT[t].reshape(n), dh.reshape(n), d.reshape(n)
    one = g.dtype.type(1)
    zero = g.dtype.type(0)
    if relu:
        for k in range(n):
            d1[k] = (one if g[k] > zero else zero) * x[k]
    else:
        for k in range(n):
            h = g[k]
            d1[k] = (one - h * h) * x[k]
    _store(d, dG, t, small)


# --------------------------------------------------------------------------- lstm
@jit
def lstm_forward_step(loop, gT, rec, Wb, ids, cT, tc, hp, h, hs, t, m, rmT, hm):
    """Step t (sigmoid rows pre-scaled by 1/2): ``g += rec`` (one-hot inputs:
    ``g = Wb[:, ids[t]] + rec``); ``tanh(g)``; ``s *= 0.5``, ``s += 0.5`` on the sigmoid
    rows; ``c = f * c_prev``, ``c += i * gg``; ``tc = tanh(c)``; ``h = o * tc``; where m is
    False ``h, c = h_prev, c_prev``; h also to ``hs[t+1]`` (B, H); with recurrent dropout
    ``hm = h * rmT``. tc, hp (h_prev), h (H, B)."""
    _input_plus(gT[t], rec, Wb, ids, t)
    _lstm_cell(loop, gT, cT, tc, hp, h, hs, t, m, rmT, hm)


@numba.njit(cache=True, nogil=True, inline="always")
def _lstm_cell(loop, gT, cT, tc, hp, h, hs, t, m, rmT, hm):
    """:func:`lstm_forward_step` once gT[t] (GH, B) holds the step's pre-activations:
    from ``tanh(g)`` on."""
    n = gT.shape[1] // 4 * gT.shape[2]  # elements of one gate block
    g = gT[t].reshape(4 * n)
    cp, c = cT[t].reshape(n), cT[t + 1].reshape(n)
    tc1, h1 = tc.reshape(n), h.reshape(n)
    half = g.dtype.type(0.5)
    _apply(loop, g, g, 4 * n)
    for k in range(3 * n):
        g[k] = g[k] * half + half
    for k in range(n):
        c[k] = g[2 * n + k] * cp[k] + g[n + k] * g[3 * n + k]
    _apply(loop, c, tc1, n)
    for k in range(n):
        h1[k] = g[k] * tc1[k]
    if m is not None:
        _keep_masked(cT[t + 1], cT[t], m[t])
    _state_out(h, hp, hs, t, m, rmT, hm)


@jit
def lstm_backward_step(loop, t, gT, cT, tanh_c, tcbuf, dhs, m, rmT, dh, dc, keep, keep_c, d,
                       dG, small, pending):
    """Step t backward. If pending, first the end of step t+1 after its product:
    ``dh *= rmT``, ``dh += keep``, ``dc += keep_c``. Then ``keep, keep_c = where(m, 0, dh),
    where(m, 0, dc)``; ``dh += dhs[t]`` (dhs (T, B, H) time-major); ``dh *= m``,
    ``dc *= m``; ``dc += dh * E``; ``d = [do, di, df, dg] = [dh, dc, dc, dc] * K``;
    ``dc *= f``, with the numpy code's factors ``E = (1 - tanh_c^2) * o`` and
    ``K = [((1 - o) o) tanh_c, ((1 - i) i) gg, ((1 - f) f) c_prev, (1 - gg^2) i]``.
    d (GH, B) also goes to the step's slot of dG ((T, GH, B) if small, else (GH, T, B)).
    Without ``tanh_c`` (T, H, B), tanh_c[t] is taken again from ``c = cT[t+1]`` (into
    tcbuf (H, B)), with numpy's tanh loop: the same bits."""
    H, B = dh.shape
    n = H * B
    if tanh_c is None:
        _apply(loop, cT[t + 1], tcbuf, n)
        tcs = tcbuf
    else:
        tcs = tanh_c[t]
    if pending:
        _finish(dh, dc, rmT, m, keep, keep_c)
    _incoming(t, dh, dhs, m, keep)
    if m is not None:
        _keep_where_masked(keep_c, dc, m[t])
        _mul_mask(dc, m[t])
    x, y, d1 = dh.reshape(n), dc.reshape(n), d.reshape(4 * n)
    g, tc, cp = gT[t].reshape(4 * n), tcs.reshape(n), cT[t].reshape(n)
    one = g.dtype.type(1)
    # in loops of few arrays each, so that they vectorise
    for k in range(n):  # dc += dh * E; do
        o, tck, xk = g[k], tc[k], x[k]
        y[k] = y[k] + xk * ((one - tck * tck) * o)
        d1[k] = (((one - o) * o) * tck) * xk
    for k in range(n):  # di, dg
        i, gg, yk = g[n + k], g[3 * n + k], y[k]
        d1[n + k] = (((one - i) * i) * gg) * yk
        d1[3 * n + k] = ((one - gg * gg) * i) * yk
    for k in range(n):  # df; dc *= f
        f, yk = g[2 * n + k], y[k]
        d1[2 * n + k] = (((one - f) * f) * cp[k]) * yk
        y[k] = yk * f
    _store(d, dG, t, small)


@jit
def lstm_forward_shard(loop, blas, own, WhT, gT, rec, Wb, ids, cT, tc, hbuf, hs):
    """All T steps of the batch, or of one shard of it (no mask, no recurrent dropout):
    per step the recurrent product ``rec = WhT @ h_prev`` (through numpy's BLAS, or with
    own: rnnkit's kernel :func:`_product`), then :func:`lstm_forward_step`, as the
    engine's step loop does them. gT (T, GH, Bs) the input projections (or ids (T, Bs) and
    Wb for one-hot inputs), cT (T+1, H, Bs) with cT[0] set, hbuf (2, H, Bs) with
    hbuf[0] = h0, hs (T+1, Bs, H) the states (a shard: its rows of the layer's)."""
    T = gT.shape[0]
    for t in range(T):
        hp, h = hbuf[t & 1], hbuf[(t + 1) & 1]
        if own:
            _product(WhT, hp, rec)
        else:
            _gemm(blas, WhT, hp, rec)
        lstm_forward_step(loop, gT, rec, Wb, ids, cT, tc, hp, h, hs, t, None, None, None)


@jit
def lstm_backward_shard(loop, blas, own, Wh, gT, cT, tc, dhs, dh, dc, d, dG, small):
    """All T steps backward of the batch or of one shard (no mask, no recurrent dropout):
    per step :func:`lstm_backward_step`, then ``dh = Wh @ d`` (through numpy's BLAS, or
    with own: rnnkit's kernel :func:`_product`). dh, dc
    (H, Bs) hold the gradients of the last state and end with those of the first; dhs
    (T, Bs, H) or None; dG the step gradients, (T, GH, Bs) if small else (GH, T, Bs) (a
    shard: its columns of the batch's)."""
    T = gT.shape[0]
    for t in range(T - 1, -1, -1):
        lstm_backward_step(loop, t, gT, cT, None, tc, dhs, None, None, dh, dc, None, None, d,
                           dG, small, False)
        if own:
            _product(Wh, d, dh)
        else:
            _gemm(blas, Wh, d, dh)


@jit
def one_hot_grad_rows(dG, ids, out, g0, g1):
    """Rows g0:g1 of ``out = dG @ eye(D)[ids]`` (GH, D), the input-weight gradient of
    one-hot inputs: ``out[g, v]`` is the sum over the n with ``ids[n] = v``, in the order
    of n, of ``dG[g, n]`` (0 where v does not occur). dG (GH, N), ids (N,) ints in [0, D),
    C-contiguous. Each row's sums are the same whichever thread forms them."""
    N = ids.shape[0]
    D = out.shape[1]
    zero = out.dtype.type(0)
    for g in range(g0, g1):
        row, src = out[g], dG[g]
        for v in range(D):
            row[v] = zero
        for n in range(N):
            row[ids[n]] += src[n]


@jit
def lstm_forward_shard_dense(loop, Wcat, x, b0, off, gT, cT, tc, hbuf, S, hs):
    """All T steps of one shard of a split LSTM with dense inputs x (T, B, D), its columns
    b0:b0+Bs (no mask, no recurrent dropout): per step the whole pre-activation in one
    product with rnnkit's kernel, ``gT[t] = Wcat @ [x_t^T; 1; h_prev]``, Wcat (GH, K) =
    ``[W_x^T | b | W_h^T]`` in inside order (no b column and no 1 row without a bias), S
    (K, Bs) the stacked input (its 1 row set by the caller; h_prev from row off on), then
    :func:`lstm_forward_step`'s element-wise work. cT (T+1, H, Bs) with cT[0] set, hbuf
    (2, H, Bs) with hbuf[0] = h0, hs (T+1, Bs, H) the shard's rows of the states."""
    T, GH, Bs = gT.shape
    D = x.shape[2]
    H = hbuf.shape[1]
    for t in range(T):
        hp, h = hbuf[t & 1], hbuf[(t + 1) & 1]
        xt = x[t]
        for b in range(Bs):
            for k in range(D):
                S[k, b] = xt[b0 + b, k]
        for j in range(H):
            for b in range(Bs):
                S[off + j, b] = hp[j, b]
        _product(Wcat, S, gT[t])
        _lstm_cell(loop, gT, cT, tc, hp, h, hs, t, None, None, None)


@jit
def lstm_backward_shard_dense(loop, Wcat2, gT, cT, tc, dhs, dh, dc, d, dG, DO, dx):
    """The backward of :func:`lstm_forward_shard_dense` with the input gradient: per step
    :func:`lstm_backward_step`, then one product with rnnkit's kernel ``DO = Wcat2 @ d``,
    Wcat2 (H + D, GH) = ``[W_h; W_x]`` (inside order), DO (H + D, Bs): its first H rows are
    dh (the caller passes ``dh = DO[:H]``), the others the step's input gradient, written
    to dx[t] (dx (T, Bs, D), the shard's columns of the layer's). dh, dc (H, Bs) hold the
    gradients of the last state and end with those of the first; dhs (T, Bs, H) or None;
    dG (GH, T, Bs)."""
    T = gT.shape[0]
    H, Bs = dh.shape
    D = dx.shape[2]
    for t in range(T - 1, -1, -1):
        lstm_backward_step(loop, t, gT, cT, None, tc, dhs, None, None, dh, dc, None, None, d,
                           dG, False, False)
        _product(Wcat2, d, DO)  # the next dh too: dh is DO[:H]
        xt = dx[t]
        for b in range(Bs):
            for k in range(D):
                xt[b, k] = DO[H + k, b]


# --------------------------------------------------------------------------- gru
@jit
def gru_forward_step(loop, gT, rec, Wb, ids, hn, b_hn, hp, h, hs, t, reset_after, m, rmT,
                     hm):
    """Step t (gates r, z, n; the sigmoid rows pre-scaled by 1/2). One-hot inputs first:
    ``g = Wb[:, ids[t]]``. Reset after: ``rz += rec[:S]``, ``hn[t] = rec[S:] (+ b_hn)``,
    ``tanh(rz)``, ``rz *= 0.5``, ``rz += 0.5``, ``n += r * hn[t]``; reset before (rec holds
    only the r, z rows): the same for rz, then ``hn[t] = r * h_in`` (h_in = hp, or hm
    with recurrent dropout) and the caller forms ``rec[S:] = W_hn^T @ hn[t]`` before
    :func:`gru_forward_finish`. Reset after finishes here."""
    GH, B = rec.shape
    H = GH // 3
    n = H * B
    S = 2 * n
    g, r1 = gT[t].reshape(3 * n), rec.reshape(3 * n)
    if ids is not None:
        _gather(gT[t], Wb, ids, t)
    for k in range(S):
        g[k] += r1[k]
    hn1 = hn[t].reshape(n)
    if reset_after:
        if b_hn is None:
            for k in range(n):
                hn1[k] = r1[S + k]
        else:
            bh = b_hn.reshape(H)
            for j in range(H):
                for b in range(B):
                    hn1[j * B + b] = r1[S + j * B + b] + bh[j]
    _apply(loop, g, g, S)
    half = g.dtype.type(0.5)
    for k in range(S):
        g[k] = g[k] * half + half
    if reset_after:
        for k in range(n):
            g[S + k] += g[k] * hn1[k]
        gru_forward_finish(loop, gT, rec, hp, h, hs, t, False, m, rmT, hm)
    else:
        hin = hp.reshape(n) if rmT is None else hm.reshape(n)
        for k in range(n):
            hn1[k] = g[k] * hin[k]


@jit
def gru_forward_finish(loop, gT, rec, hp, h, hs, t, add_rec, m, rmT, hm):
    """The end of step t: (reset before: ``n += rec[S:]``); ``tanh(n)``;
    ``h = ((h_prev - n) * z) + n``; where m is False ``h = h_prev``; h to ``hs[t+1]``;
    with recurrent dropout ``hm = h * rmT``."""
    GH, B = rec.shape
    H = GH // 3
    n = H * B
    S = 2 * n
    g = gT[t].reshape(3 * n)
    if add_rec:
        r1 = rec.reshape(3 * n)
        for k in range(n):
            g[S + k] += r1[S + k]
    _apply(loop, gT[t][2 * H:], gT[t][2 * H:], n)
    hp1, h1 = hp.reshape(n), h.reshape(n)
    for k in range(n):
        nk = g[S + k]
        h1[k] = (hp1[k] - nk) * g[n + k] + nk
    _state_out(h, hp, hs, t, m, rmT, hm)


@jit
def gru_backward_step(t, gT, hn, hs, hp, dhs, m, rmT, dh, drec, keep, d, gh, dG, dnr, small,
                      pending):
    """Step t backward, the numpy code's operations: if pending, first the end of step t+1
    after its product (reset after: ``drec *= rmT``, ``dh += drec``; ``dh += keep``).
    Then ``keep = where(m, 0, dh)``, ``dh += dhs[t]``, ``dh *= m``; with w = 1 - z,
    ``dz = (((h_prev - n) * z) * w) * dh``, ``dn = ((1 - n*n) * w) * dh``; reset after:
    ``dr = (((1 - r) * r) * hn) * dn``, ``gh = [dr; dz; dn * r]`` (the caller forms
    ``drec = W_h @ gh``; dn * r also goes to dnr (H, T, B)) and ``dh *= z``; reset before:
    dr waits for :func:`gru_backward_reset_before`. d [dr; dz; dn] goes to dG. hp (H, B)
    receives h_prev from hs[t]. ``dnr`` is None in the reset-before form."""
    H, B = dh.shape
    n = H * B
    S = 2 * n
    if pending and dnr is not None:
        if rmT is not None:
            _mul(drec, rmT, drec)
        _add(dh, drec)
    if pending and m is not None:
        _add(dh, keep)
    _incoming(t, dh, dhs, m, keep)
    _transpose_into(hp, hs[t])
    g, x, hp1, d1 = gT[t].reshape(3 * n), dh.reshape(n), hp.reshape(n), d.reshape(3 * n)
    one = g.dtype.type(1)
    for k in range(n):
        z = g[n + k]
        nk = g[S + k]
        w = one - z
        xk = x[k]
        d1[n + k] = (((hp1[k] - nk) * z) * w) * xk
        d1[S + k] = ((one - nk * nk) * w) * xk
    if dnr is not None:  # reset after
        hn1, gh1 = hn[t].reshape(n), gh.reshape(3 * n)
        for k in range(n):
            r = g[k]
            dn = d1[S + k]
            d1[k] = (((one - r) * r) * hn1[k]) * dn
            gh1[k] = d1[k]
            gh1[n + k] = d1[n + k]
            gh1[S + k] = dn * r
            x[k] = x[k] * g[n + k]
        _store(d, dG, t, small)
        _store(gh[2 * H:], dnr, t, False)


@jit
def gru_backward_reset_before(t, gT, hp, rmT, dh, drh, d, dG, small):
    """Reset before, after the caller formed ``drh = W_hn @ dn``: ``dr = K_r * drh`` with
    ``K_r = (((1 - r) * r) * h_prev) (* rmT)``, ``dh *= z``, ``drh *= r``; d to dG (the
    caller then forms ``drec = W_hrz @ [dr; dz]`` and :func:`gru_backward_finish`)."""
    H, B = dh.shape
    n = H * B
    g, hp1, x, r1, d1 = (gT[t].reshape(3 * n), hp.reshape(n), dh.reshape(n), drh.reshape(n),
                         d.reshape(3 * n))
    one = g.dtype.type(1)
    if rmT is None:
        for k in range(n):
            r = g[k]
            d1[k] = (((one - r) * r) * hp1[k]) * r1[k]
    else:
        rm = rmT.reshape(n)
        for k in range(n):
            r = g[k]
            d1[k] = ((((one - r) * r) * hp1[k]) * rm[k]) * r1[k]
    for k in range(n):
        x[k] = x[k] * g[n + k]
        r1[k] = r1[k] * g[k]
    _store(d, dG, t, small)


@jit
def gru_backward_finish(dh, drh, drec, rmT, m, keep):
    """Reset before, the end of a step after its second product: ``drh += drec``,
    ``drh *= rmT``, ``dh += drh``, ``dh += keep``."""
    _add(drh, drec)
    if rmT is not None:
        _mul(drh, rmT, drh)
    _add(dh, drh)
    if m is not None:
        _add(dh, keep)


# --------------------------------------------------------------------------- one step
@jit
def lstm_stepper_gates(loop, a, Wxb0, idx, bias, c_prev, h_out, c_out):
    """One LSTM layer of :class:`rnnkit.cells.Stepper` at batch 1, after its product
    a (GH, 1) (sigmoid rows pre-scaled by 1/2): ``a += Wxb0[idx]`` (one-hot input, idx >= 0)
    or ``a += bias`` (bias (GH, 1), or None); ``tanh(a)``; ``s *= 0.5``, ``s += 0.5``;
    ``c = f * c_prev + i * g``; ``h = tanh(c) * o``. c_prev, h_out, c_out (1, H)."""
    GH = a.shape[0]
    H = GH // 4
    a1 = a.reshape(GH)
    if idx >= 0:
        w = Wxb0[idx]
        for j in range(GH):
            a1[j] += w[j]
    elif bias is not None:
        b1 = bias.reshape(GH)
        for j in range(GH):
            a1[j] += b1[j]
    _apply(loop, a1, a1, GH)
    half = a.dtype.type(0.5)
    for j in range(3 * H):
        a1[j] = a1[j] * half + half
    cp, c, h = c_prev.reshape(H), c_out.reshape(H), h_out.reshape(H)
    for j in range(H):
        c[j] = a1[2 * H + j] * cp[j] + a1[H + j] * a1[3 * H + j]
    _apply(loop, c, h, H)
    for j in range(H):
        h[j] = h[j] * a1[j]


# --------------------------------------------------------------------------- helpers
@numba.njit(cache=True, nogil=True, inline="always")
def _input_plus(g, rec, Wb, ids, t):
    """``g += rec`` (g (GH, B) holds the input projection), or for one-hot inputs
    ``g = Wb[:, ids[t]] + rec`` (Wb (GH, D) = the projection of every one-hot vector)."""
    GH, B = rec.shape
    if ids is None:
        n = GH * B
        g1, r1 = g.reshape(n), rec.reshape(n)
        for k in range(n):
            g1[k] += r1[k]
    else:
        it = ids[t]
        for j in range(GH):
            w = Wb[j]
            for b in range(B):
                g[j, b] = w[it[b]] + rec[j, b]


@numba.njit(cache=True, nogil=True, inline="always")
def _gather(g, Wb, ids, t):
    """``g = Wb[:, ids[t]]`` (GH, B): the input projection of one-hot inputs."""
    GH, B = g.shape
    it = ids[t]
    for j in range(GH):
        w = Wb[j]
        for b in range(B):
            g[j, b] = w[it[b]]


@numba.njit(cache=True, nogil=True, inline="always")
def _add(a, w):
    """``a += w`` for C-contiguous arrays of one shape."""
    n = a.size
    a1, w1 = a.reshape(n), w.reshape(n)
    for k in range(n):
        a1[k] += w1[k]


@numba.njit(cache=True, nogil=True, inline="always")
def _state_out(h, hp, hs, t, m, rmT, hm):
    """After step t wrote h (H, B): where m is False ``h = h_prev`` (hp); the state to
    ``hs[t+1]`` (B, H); with recurrent dropout ``hm = h * rmT``."""
    H, B = h.shape
    if m is not None:
        _keep_masked(h, hp, m[t])
    _transpose_into(hs[t + 1], h)
    if rmT is not None:
        _mul(h, rmT, hm)


@numba.njit(cache=True, nogil=True, inline="always")
def _keep_masked(a, prev, mt):
    """``np.copyto(a, prev, where=~m)``: a, prev (H, B); mt (B,) bool."""
    H, B = a.shape
    for j in range(H):
        for b in range(B):
            if not mt[b]:
                a[j, b] = prev[j, b]


@numba.njit(cache=True, nogil=True, inline="always")
def _keep_where_masked(keep, a, mt):
    """``keep = np.where(m, 0, a)``: keep, a (H, B); mt (B,) bool."""
    H, B = a.shape
    zero = a.dtype.type(0)
    for j in range(H):
        for b in range(B):
            keep[j, b] = zero if mt[b] else a[j, b]


@numba.njit(cache=True, nogil=True, inline="always")
def _mul_mask(a, mt):
    """``a *= m`` (the bool mask as 1.0 / 0.0): a (H, B); mt (B,) bool."""
    H, B = a.shape
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    for j in range(H):
        for b in range(B):
            a[j, b] *= one if mt[b] else zero


@numba.njit(cache=True, nogil=True, inline="always")
def _mul(a, w, out):
    """``np.multiply(a, w, out=out)`` for C-contiguous arrays of one shape."""
    n = a.size
    a1, w1, o1 = a.reshape(n), w.reshape(n), out.reshape(n)
    for k in range(n):
        o1[k] = a1[k] * w1[k]


@numba.njit(cache=True, nogil=True, inline="always")
def _incoming(t, dh, dhs, m, keep):
    """The start of backward step t: ``keep = where(m, 0, dh)``, ``dh += dhs[t]``,
    ``dh *= m`` (dhs (T, B, H) or None, m (T, B) or None)."""
    if m is not None:
        _keep_where_masked(keep, dh, m[t])
    if dhs is not None:
        _add_transposed(dh, dhs[t])
    if m is not None:
        _mul_mask(dh, m[t])


@numba.njit(cache=True, nogil=True, inline="always")
def _finish(dh, dc, rmT, m, keep, keep_c):
    """The end of a backward step after its recurrent product: ``dh *= rmT``;
    ``dh += keep``, ``dc += keep_c`` (dc None for the RNN)."""
    n = dh.size
    x = dh.reshape(n)
    if rmT is not None:
        r = rmT.reshape(n)
        for k in range(n):
            x[k] *= r[k]
    if m is not None:
        kp = keep.reshape(n)
        for k in range(n):
            x[k] += kp[k]
        if dc is not None:
            y, kc = dc.reshape(n), keep_c.reshape(n)
            for k in range(n):
                y[k] += kc[k]


@numba.njit(cache=True, nogil=True, inline="always")
def _store(d, dG, t, small):
    """Copy a step's gradients d (GH, B) to its slot of dG: (T, GH, B) if small, else
    (GH, T, B)."""
    GH, B = d.shape
    if small:
        dst = dG[t]
        for j in range(GH):
            for b in range(B):
                dst[j, b] = d[j, b]
    else:
        for j in range(GH):
            src, dst = d[j], dG[j, t]
            for b in range(B):
                dst[b] = src[b]


@numba.njit(cache=True, nogil=True, inline="always")
def _add_transposed(a, d):
    """``a += d.T``: a (H, B), d (B, H) (the feature-major copy the numpy code makes)."""
    _transposed(a, d, False)


@numba.njit(cache=True, nogil=True, inline="always")
def _transpose_into(out, h):
    """``out[...] = h.T``: out (B, H), h (H, B)."""
    _transposed(h, out, True)


@numba.njit(cache=True, nogil=True, inline="always")
def _transposed(P, Q, to_q):
    """Between P (H, B) and Q (B, H): ``Q[...] = P.T`` if to_q, else ``P += Q.T``. Blocks
    larger than the first-level cache go in bands of 32 rows of P, so that the strided side
    stays in that cache."""
    H, B = P.shape
    step = H if P.nbytes <= _L1_BYTES else 32
    for j0 in range(0, H, step):
        j1 = min(j0 + step, H)
        for b in range(B):
            if to_q:
                for j in range(j0, j1):
                    Q[b, j] = P[j, b]
            else:
                for j in range(j0, j1):
                    P[j, b] += Q[b, j]


# --------------------------------------------------------------------------- adam
@jit
def adam_update(p, g, m, v, wd, c1, b2, c2, sbc2, eps, step):
    """One Adam update in place of the flat arrays p, g, m, v, as :class:`rnnkit.optim.Adam`
    computes it with numpy: ``g = g + wd * p`` (if wd); ``m += (g - m) * c1``;
    ``v *= b2``; ``v += (g * g) * c2``; ``p -= (m / (sqrt(v) / sbc2 + eps)) * step``,
    every constant in the arrays' dtype. (Two loops of few arrays each, so that both
    vectorise.)"""
    n = p.size
    if wd != 0:
        for k in range(n):
            gk = g[k] + wd * p[k]
            m[k] = m[k] + (gk - m[k]) * c1
            v[k] = v[k] * b2 + (gk * gk) * c2
    else:
        for k in range(n):
            gk = g[k]
            m[k] = m[k] + (gk - m[k]) * c1
            v[k] = v[k] * b2 + (gk * gk) * c2
    for k in range(n):
        p[k] = p[k] - (m[k] / (np.sqrt(v[k]) / sbc2 + eps)) * step
