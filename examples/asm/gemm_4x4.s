; One 4x4x4 int8 GEMM tile on the 4x4 array: C[4,4] = A[4,4] x W[4,4], int32 out.
; The two loads run on the LOAD queue; the last one signals COMPUTE, which
; loads the weights, streams A through them and signals STORE.
;
; systole-test: hw=tiny
; input: 0x1000 gemm_4x4.a.npy          A, int8 [4,4], row-major
; input: 0x1100 gemm_4x4.w.npy          W, int8 [4,4], row r = weights of reduction index r
; output: 0x2000 i32 4x4 gemm_4x4.c.npy C, int32 [4,4]
; expect-cycles: 135

load buf=spad dram=0x1000 stride=4 rows=4 cols=4                   ; A -> scratchpad rows 0..4
load buf=spad dram=0x1100 stride=4 rows=4 cols=4 addr=4 @signal(compute) ; W -> rows 4..8
ldw addr=4 k=4 n=4 @wait(load)                                      ; W -> shadow weights
matmul m=4 swap=1 @signal(store)                                    ; stream A: acc rows 0..4
store buf=acc dram=0x2000 stride=16 rows=4 cols=4 @wait(compute)    ; acc -> C (int32)
finish
