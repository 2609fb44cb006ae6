"""The convergence test: does every loss curve in a folder satisfy the Cauchy criterion?
(acceptance/cauchy.py has the criterion; ``python cauchy_test.py --help`` lists every flag.)"""
import sys

from acceptance.cauchy import main

if __name__ == "__main__":
    sys.exit(main())
