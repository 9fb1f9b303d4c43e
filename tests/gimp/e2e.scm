; Gesso end-to-end cases, run by tests/gimp/run-e2e.sh in a headless gimp-console-3.0.
;
; Each case builds a small image in GIMP, calls one Gesso procedure non-interactively (named
; arguments, as Script-Fu in GIMP 3 wants for plug-in procedures), and leaves its evidence in
; OUT: "facts.txt" (key=value lines), PNG exports of the layers and of the flattened image
; before and after, and the recipe text. tests/gimp/check.py judges them. A case whose
; procedure call fails stops the batch, and the runner reports gimp-console's error.
;
; Written for the v2 dialect batch mode starts in: procedures return lists, hence (car ...).

(define (e2e-fact port key value)
  (display key port)
  (display "=" port)
  (display value port)
  (newline port))

(define (e2e-path out name) (string-append out "/" name))

(define (e2e-paint-rect img drawable x y w h color)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-context-set-foreground color)
  (gimp-drawable-edit-fill drawable FILL-FOREGROUND)
  (gimp-selection-none img))

; A W x H image of BASE type (RGB or GRAY) with an opaque "Background" holding a few blocks
; of colour, so that a changed pixel cannot hide. Returns (image background).
(define (e2e-new-image base w h)
  (let* ((img (car (gimp-image-new w h base)))
         (type (if (= base GRAY) GRAY-IMAGE RGB-IMAGE))
         (bg (car (gimp-layer-new img "Background" w h type 100 LAYER-MODE-NORMAL))))
    (gimp-image-insert-layer img bg 0 0)
    (gimp-context-set-feather FALSE)
    (gimp-context-set-antialias FALSE)
    (gimp-context-set-foreground '(40 90 160))
    (gimp-drawable-edit-fill bg FILL-FOREGROUND)
    (e2e-paint-rect img bg 0 (quotient h 2) w (- h (quotient h 2)) '(200 170 90))
    (e2e-paint-rect img bg (quotient w 3) 6 (quotient w 4) (- h 12) '(180 40 40))
    (e2e-paint-rect img bg 4 4 6 6 '(250 250 250))
    (list img bg)))

; LAYER alone, at its own size, as a PNG (through a scratch image: the test image is never
; exported, flattened or otherwise changed by the evidence gathering).
(define (e2e-export-layer img layer path)
  (let* ((w (car (gimp-drawable-get-width layer)))
         (h (car (gimp-drawable-get-height layer)))
         (scratch (car (gimp-image-new w h (car (gimp-image-get-base-type img)))))
         (copy (car (gimp-layer-new-from-drawable layer scratch))))
    (gimp-image-insert-layer scratch copy 0 0)
    (gimp-layer-set-offsets copy 0 0)
    (gimp-item-set-visible copy TRUE)
    (gimp-file-save RUN-NONINTERACTIVE scratch path -1)
    (gimp-image-delete scratch)))

; What the user sees, flattened onto the background colour, as a PNG.
(define (e2e-export-flat img path)
  (let ((dup (car (gimp-image-duplicate img))))
    (gimp-image-flatten dup)
    (gimp-file-save RUN-NONINTERACTIVE dup path -1)
    (gimp-image-delete dup)))

(define (e2e-layer-count img) (vector-length (car (gimp-image-get-layers img))))

(define (e2e-write-text path text)
  (let ((port (open-output-file path)))
    (display text port)
    (close-output-port port)))

; Facts about the new layer NEW: name, size, offsets, type, position, its recipe; the recipe
; text goes to PREFIX-recipe.txt.
(define (e2e-describe-layer port img new prefix out)
  (let ((offsets (gimp-drawable-get-offsets new))
        (parasite (catch #f (car (gimp-item-get-parasite new "gesso-recipe")))))
    (e2e-fact port "name" (car (gimp-item-get-name new)))
    (e2e-fact port "width" (car (gimp-drawable-get-width new)))
    (e2e-fact port "height" (car (gimp-drawable-get-height new)))
    (e2e-fact port "offset-x" (car offsets))
    (e2e-fact port "offset-y" (cadr offsets))
    (e2e-fact port "is-gray" (car (gimp-drawable-is-gray new)))
    (e2e-fact port "has-alpha" (car (gimp-drawable-has-alpha new)))
    (e2e-fact port "position" (car (gimp-image-get-item-position img new)))
    (if (and parasite (pair? parasite) (= (length parasite) 3))
        (begin
          (e2e-fact port "recipe-flags" (cadr parasite))
          (e2e-write-text (e2e-path out (string-append prefix "-recipe.txt"))
                          (caddr parasite)))
        (e2e-fact port "recipe-flags" "none"))))

; Saves IMG as XCF, loads it back and records whether the top layer still carries its recipe.
(define (e2e-xcf-roundtrip port img out prefix)
  (let ((xcf (e2e-path out (string-append prefix ".xcf"))))
    (gimp-file-save RUN-NONINTERACTIVE img xcf -1)
    (let* ((back (car (gimp-file-load RUN-NONINTERACTIVE xcf)))
           (top (vector-ref (car (gimp-image-get-layers back)) 0))
           (parasite (catch #f (car (gimp-item-get-parasite top "gesso-recipe")))))
      (e2e-fact port "xcf-recipe" (if (and parasite (pair? parasite)) "yes" "no"))
      (gimp-image-delete back))))

; --- the cases ------------------------------------------------------------------------------

; Inpaint a crisp rectangle with mask grow and feather 0: the new layer must be exactly the
; rectangle. Then the same with a feathered ellipse on a smaller, offset layer.
(define (e2e-inpaint model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 64 64))
         (img (car made))
         (bg (cadr made)))
    (e2e-export-layer img bg (e2e-path out "orig-before.png"))
    (e2e-export-flat img (e2e-path out "flat-before.png"))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 16 20 24 16)
    (gimp-image-clean-all img)
    (e2e-fact port "layers-before" (e2e-layer-count img))
    (let ((new (car (plug-in-gesso-inpaint #:run-mode RUN-NONINTERACTIVE #:image img
                                           #:drawables (vector bg)
                                           #:prompt "a stone wall"
                                           #:negative-prompt "blurry"
                                           #:model model #:steps 3 #:seed 42
                                           #:random-seed FALSE #:mask-grow 0.0
                                           #:mask-feather 0.0 #:pixel-budget 4096))))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-fact port "dirty" (car (gimp-image-is-dirty img)))
      (e2e-fact port "selection-kept" (car (gimp-selection-bounds img)))
      (e2e-describe-layer port img new "inpaint" out)
      (e2e-export-layer img bg (e2e-path out "orig-after.png"))
      (e2e-export-layer img new (e2e-path out "new.png"))
      (e2e-export-flat img (e2e-path out "flat-after.png"))
      (e2e-xcf-roundtrip port img out "inpaint")
      ; what one undo of the run's group takes away: the new layer
      (gimp-image-remove-layer img new)
      (e2e-fact port "layers-removed" (e2e-layer-count img))
      (e2e-export-flat img (e2e-path out "flat-removed.png")))

    ; a feathered ellipse over a 40x40 layer at (10, 12), default grow and feather
    (let* ((photo (car (gimp-layer-new img "Photo" 40 40 RGBA-IMAGE 100 LAYER-MODE-NORMAL))))
      (gimp-image-insert-layer img photo 0 0)
      (gimp-layer-set-offsets photo 10 12)
      (gimp-selection-none img)
      (gimp-context-set-foreground '(30 160 60))
      (gimp-drawable-edit-fill photo FILL-FOREGROUND)
      (e2e-paint-rect img photo 20 20 10 25 '(250 220 20))
      (e2e-export-layer img photo (e2e-path out "soft-orig-before.png"))
      (e2e-export-flat img (e2e-path out "soft-flat-before.png"))
      (gimp-context-set-feather TRUE)
      (gimp-context-set-feather-radius 4 4)
      (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 22 24 16 12)
      (gimp-context-set-feather FALSE)
      (let ((new (car (plug-in-gesso-inpaint #:run-mode RUN-NONINTERACTIVE #:image img
                                             #:drawables (vector photo)
                                             #:prompt "a yellow flower"
                                             #:model model #:steps 3 #:seed 7
                                             #:random-seed FALSE #:pixel-budget 4096)))
            (bounds (gimp-selection-bounds img)))
        (e2e-fact port "soft-sel-x1" (list-ref bounds 1))
        (e2e-fact port "soft-sel-y1" (list-ref bounds 2))
        (e2e-fact port "soft-sel-x2" (list-ref bounds 3))
        (e2e-fact port "soft-sel-y2" (list-ref bounds 4))
        (e2e-fact port "soft-position" (car (gimp-image-get-item-position img new)))
        (e2e-fact port "soft-photo-position" (car (gimp-image-get-item-position img photo)))
        (let ((offsets (gimp-drawable-get-offsets new)))
          (e2e-fact port "soft-width" (car (gimp-drawable-get-width new)))
          (e2e-fact port "soft-height" (car (gimp-drawable-get-height new)))
          (e2e-fact port "soft-offset-x" (car offsets))
          (e2e-fact port "soft-offset-y" (cadr offsets)))
        (e2e-export-layer img photo (e2e-path out "soft-orig-after.png"))
        (e2e-export-flat img (e2e-path out "soft-flat-after.png"))))
    (close-output-port port)
    (gimp-image-delete img)))

; Inpaint with nothing selected: the call must fail with the message the user needs. The
; failing call ends the batch; the runner checks gimp-console's exit status and message.
(define (e2e-inpaint-empty model out)
  (let* ((made (e2e-new-image RGB 32 32))
         (img (car made))
         (bg (cadr made)))
    (gimp-selection-none img)
    (plug-in-gesso-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector bg)
                           #:prompt "anything" #:model model #:steps 2)))

; Generate into a rectangle, with the model left empty: the default model is found through
; $GESSO_MODEL_PATH (the runner points it at the test model).
(define (e2e-generate model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 64 64))
         (img (car made))
         (bg (cadr made)))
    (e2e-export-layer img bg (e2e-path out "orig-before.png"))
    (e2e-export-flat img (e2e-path out "flat-before.png"))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 8 8 32 24)
    (e2e-fact port "layers-before" (e2e-layer-count img))
    (let ((new (car (plug-in-gesso-generate #:run-mode RUN-NONINTERACTIVE #:image img
                                            #:drawables (vector bg)
                                            #:prompt "a red apple on a table"
                                            #:model "" #:steps 3 #:seed 1
                                            #:random-seed FALSE #:sampler "euler-a"
                                            #:pixel-budget 4096))))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-describe-layer port img new "generate" out)
      (e2e-export-layer img bg (e2e-path out "orig-after.png"))
      (e2e-export-flat img (e2e-path out "flat-after.png"))
      (gimp-image-remove-layer img new)
      (e2e-export-flat img (e2e-path out "flat-removed.png")))
    (close-output-port port)
    (gimp-image-delete img)))

; An empty, transparent "Strokes" layer on top of IMG.
(define (e2e-stroke-layer img)
  (let ((strokes (car (gimp-layer-new img "Strokes" 64 64 RGBA-IMAGE 100 LAYER-MODE-NORMAL))))
    (gimp-image-insert-layer img strokes 0 0)
    (gimp-drawable-edit-clear strokes)
    strokes))

; The evidence before a Realize Strokes run: both layers and the flattened image as PNGs.
(define (e2e-strokes-before port img bg strokes out)
  (e2e-export-layer img bg (e2e-path out "orig-before.png"))
  (e2e-export-layer img strokes (e2e-path out "strokes-before.png"))
  (e2e-export-flat img (e2e-path out "flat-before.png"))
  (e2e-fact port "layers-before" (e2e-layer-count img)))

; Strokes painted on their own layer: realised where they are, stroke layer hidden after.
(define (e2e-strokes model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 64 64))
         (img (car made))
         (bg (cadr made))
         (strokes (e2e-stroke-layer img)))
    (e2e-paint-rect img strokes 20 24 16 12 '(20 200 60))
    (e2e-strokes-before port img bg strokes out)
    (let ((new (car (plug-in-gesso-realize-strokes #:run-mode RUN-NONINTERACTIVE #:image img
                                                   #:drawables (vector strokes)
                                                   #:prompt "a green bush"
                                                   #:model model #:steps 3 #:seed 3
                                                   #:random-seed FALSE #:strength 0.7
                                                   #:mask-grow 0.0 #:mask-feather 0.0
                                                   #:hide-strokes TRUE #:pixel-budget 4096))))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-fact port "strokes-visible" (car (gimp-item-get-visible strokes)))
      (e2e-describe-layer port img new "strokes" out)
      (e2e-export-layer img bg (e2e-path out "orig-after.png"))
      (e2e-export-layer img strokes (e2e-path out "strokes-after.png"))
      (e2e-export-flat img (e2e-path out "flat-after.png"))
      (gimp-image-remove-layer img new)
      (gimp-item-set-visible strokes TRUE)
      (e2e-export-flat img (e2e-path out "flat-removed.png")))
    (close-output-port port)
    (gimp-image-delete img)))

; Realize Strokes following the strokes' shape with a scribble ControlNet (CONTROLNET, for
; MODEL's UNet): one new layer over the strokes' box, nothing else touched, the ControlNet's
; settings in the recipe.
(define (e2e-strokes-control model controlnet out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 64 64))
         (img (car made))
         (bg (cadr made))
         (strokes (e2e-stroke-layer img)))
    (e2e-paint-rect img strokes 12 16 28 6 '(20 20 20))
    (e2e-paint-rect img strokes 30 16 6 30 '(20 20 20))
    (e2e-strokes-before port img bg strokes out)
    (let ((new (car (plug-in-gesso-realize-strokes #:run-mode RUN-NONINTERACTIVE #:image img
                                                   #:drawables (vector strokes)
                                                   #:prompt "a black fence"
                                                   #:model model #:steps 3 #:seed 5
                                                   #:random-seed FALSE #:strength 0.8
                                                   #:mask-grow 0.0 #:mask-feather 0.0
                                                   #:hide-strokes FALSE #:pixel-budget 4096
                                                   #:control-model controlnet
                                                   #:follow-strokes TRUE
                                                   #:control-scale 0.9
                                                   #:control-end 0.75))))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-describe-layer port img new "strokes-control" out)
      (e2e-export-layer img bg (e2e-path out "orig-after.png"))
      (e2e-export-layer img strokes (e2e-path out "strokes-after.png"))
      (gimp-item-set-visible new FALSE)
      (e2e-export-flat img (e2e-path out "flat-hidden.png"))
      (gimp-item-set-visible new TRUE)
      (e2e-export-flat img (e2e-path out "flat-after.png")))
    (close-output-port port)
    (gimp-image-delete img)))

; Restyle a grayscale image, no selection: the whole layer, written back as gray.
(define (e2e-restyle model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image GRAY 48 40))
         (img (car made))
         (bg (cadr made)))
    (e2e-export-layer img bg (e2e-path out "orig-before.png"))
    (e2e-export-flat img (e2e-path out "flat-before.png"))
    (e2e-fact port "layers-before" (e2e-layer-count img))
    (let ((new (car (plug-in-gesso-restyle #:run-mode RUN-NONINTERACTIVE #:image img
                                           #:drawables (vector bg)
                                           #:prompt "a watercolor painting"
                                           #:source-prompt "a photo"
                                           #:model model #:steps 3 #:strength 0.6
                                           #:seed 5 #:random-seed FALSE
                                           #:pixel-budget 4096))))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-describe-layer port img new "restyle" out)
      (e2e-export-layer img bg (e2e-path out "orig-after.png"))
      (e2e-export-flat img (e2e-path out "flat-after.png"))
      (gimp-image-remove-layer img new)
      (e2e-export-flat img (e2e-path out "flat-removed.png")))
    (close-output-port port)
    (gimp-image-delete img)))

; Filters ▸ Repeat: RUN-WITH-LAST-VALS passes no arguments and must never touch GTK (there is
; no display to open here). In a fresh profile it runs with the procedure's defaults (the
; model through $GESSO_MODEL_PATH): 30 steps at the model's native size, hence optional.
(define (e2e-last-vals model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 32 32))
         (img (car made))
         (bg (cadr made))
         (again (car (plug-in-gesso-restyle #:run-mode RUN-WITH-LAST-VALS #:image img
                                            #:drawables (vector bg)))))
    (e2e-fact port "last-vals-name" (car (gimp-item-get-name again)))
    (close-output-port port)
    (gimp-image-delete img)))

; Two PNGs in IN for the batch example (data/scripts/gesso-batch-inpaint.scm).
(define (e2e-batch-inputs in)
  (let loop ((i 0))
    (if (< i 3)
        (let* ((made (e2e-new-image RGB (+ 48 (* 16 i)) 48))
               (img (car made)))
          (e2e-export-flat img (string-append in "/sample-" (number->string i) ".png"))
          (gimp-image-delete img)
          (loop (+ i 1))))))

; The model choosers' list (plug-in-gesso-models, what the dialogs offer) with HOME holding
; A1111's and ComfyUI's folders, then a run that names its model and VAE the way a user picks
; them there: "a" (A1111's models/Stable-diffusion/a.safetensors) and "d" (ComfyUI's
; models/vae/d.safetensors).
; A string array comes back from a procedure as a list in Script-Fu 3.0 (a vector in some
; builds); either is written one item a line.
(define (e2e-write-list path items)
  (let ((port (open-output-file path)))
    (for-each (lambda (item) (display item port) (newline port))
              (if (vector? items) (vector->list items) items))
    (close-output-port port)))

(define (e2e-models model out)
  (let* ((checkpoints (plug-in-gesso-models #:kind "checkpoint"))
         (vaes (plug-in-gesso-models #:kind "VAE"))
         (port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 32 32))
         (img (car made))
         (bg (cadr made)))
    (e2e-write-list (e2e-path out "checkpoint-paths.txt") (car checkpoints))
    (e2e-write-list (e2e-path out "checkpoint-names.txt") (cadr checkpoints))
    (e2e-write-list (e2e-path out "vae-paths.txt") (car vaes))
    (let ((new (car (plug-in-gesso-generate #:run-mode RUN-NONINTERACTIVE #:image img
                                            #:drawables (vector bg)
                                            #:prompt "a red apple" #:model "a" #:vae "d"
                                            #:steps 2 #:seed 3 #:random-seed FALSE
                                            #:pixel-budget 1024))))
      (e2e-describe-layer port img new "models" out))
    (close-output-port port)
    (gimp-image-delete img)))

; Generate with a LoRA called up by A1111's prompt tag: the same run without the tag, with it
; (the LoRA is found in the model folders, the runner's $GESSO_MODEL_PATH), and with a tag
; naming no LoRA, which must be refused without adding a layer.
(define (e2e-lora model out)
  (let* ((port (open-output-file (e2e-path out "facts.txt")))
         (made (e2e-new-image RGB 64 64))
         (img (car made))
         (bg (cadr made))
         (generate (lambda (prompt)
                     (car (plug-in-gesso-generate #:run-mode RUN-NONINTERACTIVE #:image img
                                                  #:drawables (vector bg) #:prompt prompt
                                                  #:model model #:steps 3 #:seed 1
                                                  #:random-seed FALSE #:sampler "euler-a"
                                                  #:pixel-budget 4096)))))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 8 8 32 24)
    (let ((plain (generate "a red apple on a table")))
      (e2e-export-layer img plain (e2e-path out "plain.png"))
      (gimp-image-remove-layer img plain))
    (e2e-fact port "layers-before" (e2e-layer-count img))
    (let ((styled (generate "<lora:e2e-style:1> a red apple on a table")))
      (e2e-fact port "layers-after" (e2e-layer-count img))
      (e2e-export-layer img styled (e2e-path out "styled.png"))
      (e2e-describe-layer port img styled "lora" out)
      (e2e-fact port "layers-before-missing" (e2e-layer-count img))
      (e2e-fact port "missing-refused"
                (if (catch #f (generate "<lora:no-such-style:1> a red apple") #t) 0 1))
      (e2e-fact port "layers-after-missing" (e2e-layer-count img)))
    (close-output-port port)))
