from cxgraph.cli import main

main()
