module example.com/dispenserd-examples

go 1.19
