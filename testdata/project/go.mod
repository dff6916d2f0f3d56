module example.com/project

go 1.26

require (
	example.com/Upper/Mod v1.0.0
	example.com/incompat v2.0.0+incompatible
	example.com/lib v1.1.0
	example.com/major/v2 v2.1.0
	example.com/nogomod v1.0.0
	example.com/pseudo v0.0.0-20240102030405-abcdef123456
)
