"""Collection throughput at the scale where batching matters, idle and under a one-core background load.

    python -m benchmarks.bench_collect                     # 12 documents, idle + loaded (hours: benchmarks/README.md)
    python -m benchmarks.bench_collect --quick             # 2 documents, fewer prompts per stage
    python -m benchmarks.bench_collect --report output/bench_collect/results.json   # an earlier run's tables again
    python -m benchmarks.bench_collect -- --batch_size 16  # flags after -- go to the collector
    python -m finetuning.llama_server                      # builds llama-server once, for (c)

Corpus: --num_docs documents built in <output_dir>/docs from the sample folders, each source repeated
under another name with its fictional names changed per copy (benchmarks/collect_corpus.py), so every
stage gets enough prompts to fill its batches and no prompt repeats another document's.

The same documents go through the same collector code (``data_processor.pipeline.run_collection``: same
prompts, parsing, repairs, caps), with a fresh reply cache per run, three ways:
  (a) sequential      one process, one ``generate`` call per prompt, in order (the original toolkit's loop;
                      torch's own threads, or --threads)
  (b) collector       the hf backend exactly as the collector builds it by default
                      (``build_backend("hf", **CollectConfig.backend_kwargs())``: on a CPU one worker process
                      per core with one torch thread each, continuous batching in --batch_size slots)
  (c) llama_server    the api backend against llama.cpp's C++ ``llama-server`` on the default model's GGUF,
                      with --server_parallel slots and continuous batching, and as many requests in flight
  collector_generate  (optional) (b) with ``model.generate`` on whole batches instead of continuous batching
  collector_1proc     (optional) (b) in one process with torch's threads and ``model.generate``: the layout
                      before worker processes
Every reply is generated, never read from a cache; backends are loaded (and worker pools started) before
the clock starts, so the figures are steady-state throughput.

Alongside, in the same run:
  model_workers / model_inproc   the bare model's own batched ``model.generate()`` on (b)'s prompts (one full
      batch per worker of each stage's first prompts, the stage's own sampling), through (b)'s worker
      layout and in one process: the same batch size and dtype, without stages, parsing, repairs or cache.
      (b)'s ratio to it weights each stage by (b)'s own tokens.
  replay_default / replay_1proc  ``replay.build.build_replay`` on --replay_prompts prompts (batch 16, greedy)
  eval_default / eval_1proc      greedy answers to the questions of --eval_qa (batch 32), as evaluate.py asks
All of it runs --rounds times, each round idle and then with a busy-loop process pinned to one core
(benchmarks/background_load.py). Ratios are formed within a round, then averaged. Every measurement goes
to <output_dir>/results.json as soon as it is made (an interrupted run keeps what it measured). The
ratio table, each target with its measured value and PASS/MISS, is printed last, with a note giving the
measured reason for each MISS.

Modules: ``jobs`` (what each job runs, and the wrapper that measures it), ``report`` (the figures, ratios,
targets and tables: the same for a finished run and for ``--report``), ``cli`` (the flags and ``main``).
"""
