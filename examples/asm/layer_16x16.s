; One quantized dense layer on the 16x16 array: Y = relu(requant(X W + bias)).
; X int8 [16,16], W int8 [16,16], per-column bias (int32) and requantization
; scale (float32 bits) in two accumulator rows; output int8 with zero point
; -128, and ReLU fused as the clamp's lower bound (qmin = zero point), as
; ONNX Runtime's quantizer produces it.
;
; systole-test: hw=default
; input: 0x1000 layer_16x16.x.npy         X, int8 [16,16]
; input: 0x1100 layer_16x16.w.npy         W, int8 [16,16]
; input: 0x1200 layer_16x16.params.npy    int32 [2,16]: bias row, then scale bits row
; output: 0x2000 i8 16x16 layer_16x16.y.npy Y, int8 [16,16]
; expect-cycles: 462

load buf=spad dram=0x1000 stride=16 rows=16 cols=16                   ; X -> scratchpad rows 0..16
load buf=spad dram=0x1100 stride=16 rows=16 cols=16 addr=16           ; W -> rows 16..32
load buf=acc dram=0x1200 stride=64 rows=2 cols=16 addr=16 @signal(compute) ; bias, scale -> acc rows 16, 17
ldw addr=16 k=16 n=16 @wait(load)
matmul m=16 swap=1                                                    ; X W -> acc rows 0..16
requant rows=16 dst=32 params=16 zp=-128 qmin=-128 qmax=127 @signal(store) ; waits for the array to drain
store dram=0x2000 stride=16 rows=16 cols=16 addr=32 @wait(compute)
finish
