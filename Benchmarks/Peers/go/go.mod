module spindle/benchmarks/peers/go

go 1.19
